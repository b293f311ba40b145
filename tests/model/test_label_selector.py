"""kubectl's equality-based label selector (model/label_selector.py): what `-l`, ListJobsFilter.label_selector and
CancelJobsRequest.label_selector take, and each malformed form refused with the part it names."""

from __future__ import annotations

import pytest

from federator.model.label_selector import MAX_REQUIREMENTS, MAX_SELECTOR_CHARS, SelectorError, parse

LABELS = {"armada/job-set": "js1", "app": "llama", "tier": "train"}


@pytest.mark.parametrize(("text", "takes"), [
    ("", True),
    ("armada/job-set=js1", True),
    ("armada/job-set==js1", True),
    ("armada/job-set=js2", False),
    ("app=llama, tier=train", True),  # comma = AND, blanks around a part ignored
    ("app=llama,tier=serve", False),
    ("app!=mistral", True),
    ("team!=a", True),  # != holds of a job without the key, as kubectl
    ("app!=llama", False),
    ("tier", True),
    ("team", False),
    ("!team", True),
    ("!app", False),
    ("app=", False),  # an empty value: the key with an empty value only
])
def test_a_selector_takes_the_jobs_kubectl_would(text: str, takes: bool) -> None:
    assert parse(text).takes(LABELS) is takes
    assert parse(text).takes(tuple(LABELS.items())) is takes


def test_a_selector_says_itself_back_in_one_canonical_form() -> None:
    assert str(parse(" app==llama , !spot,tier ")) == "app=llama,!spot,tier"


@pytest.mark.parametrize(("text", "said"), [
    ("app in (a,b)", "set-based requirements (in, notin) are not supported"),
    ("x=1,app in (a,b)", "'app in (a,b)': set-based"),  # quoted whole, not cut at its comma (outside QA N7)
    ("app notin (a)", "set-based requirements (in, notin) are not supported"),
    ("app=x,,tier", "empty requirement"),
    ("app=x,", "empty requirement"),
    ("  ", "only blanks"),
    ("=x", "no label key before '='"),
    ("!", "'!' with no label key after it"),
    ("app=b=c", "label value 'b=c'"),
    ("app=-x", "label value '-x'"),
    ("app=" + "v" * 64, "at most 63 characters"),
    ("Bad_/app=x", "its prefix must be a lower-case DNS subdomain"),
    ("-app=x", "label key '-app'"),
    ("a" * 64, "a name must be 1 to 63 characters"),
    (",".join(["a"] * (MAX_REQUIREMENTS + 1)), f"at most {MAX_REQUIREMENTS} requirements, got 33"),
    ("a=" + "b" * MAX_SELECTOR_CHARS, f"at most {MAX_SELECTOR_CHARS} characters"),
])
def test_each_malformed_selector_is_refused_naming_its_problem(text: str, said: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse(text)
    assert said in str(err.value)


@pytest.mark.parametrize(("text", "expression"), [
    ("app=llama", {"key": "app", "operator": "In", "values": ["llama"]}),
    ("team!=a", {"key": "team", "operator": "NotIn", "values": ["a"]}),
    ("tier", {"key": "tier", "operator": "Exists"}),
    ("!spot", {"key": "spot", "operator": "DoesNotExist"}),
], ids=["equals-is-In", "not-equals-is-NotIn", "key-is-Exists", "not-key-is-DoesNotExist"])
def test_kubectls_form_and_a_match_expression_come_to_one_requirement(text: str, expression: dict[str, object]) -> None:
    """review59 R2: `-l` for jobs, a job's spec.clusters.selector and a tenancy file's namespace selector each had
    their own requirement type and matching; they now come to model/label_requirement.py's one LabelRequirement,
    so one rule decides In, NotIn, Exists and DoesNotExist for all three."""
    from federator.jobfile_affinity import parse_clusters
    from federator.security.authz import selector_from_document

    (from_kubectl,) = parse(text).requirements
    bad: list[str] = []
    (from_job,) = parse_clusters({"selector": {"matchExpressions": [expression]}},
                                 lambda field, problem: bad.append(f"{field}: {problem}")).match_expressions
    tenancy = selector_from_document({"matchExpressions": [expression]}, "namespaces[0].selector", bad)
    assert bad == [] and tenancy is not None
    assert from_kubectl == from_job == tenancy.match_expressions[0]
    for labels in ({}, {"app": "llama"}, {"team": "a"}, {"team": "b", "tier": "x"}, {"spot": ""}):
        assert parse(text).takes(labels) is from_job.matches(labels) is tenancy.matches(labels)
