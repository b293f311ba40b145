"""security/authz.py: the tenancy policy parsed and decided, as pure functions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from federator.scheduler.policy import parse_policy
from federator.security.auth import Peer
from federator.security.authz import (
    Allowed,
    Authorizer,
    Denied,
    Rule,
    TenancyError,
    selector_from_document,
    tenancy_from_document,
)

POLICY = """
tenancy:
  admins: {groups: [platform]}
  groups: {team-a: {users: [alice]}}
queues:
  research:
    access: {groups: [team-a]}
    namespaceSelector:
      matchLabels: {tenant: a}
      matchExpressions: [{key: tier, operator: NotIn, values: [frozen]}]
defaultQueue:
  namespaceSelector: {matchExpressions: [{key: federator.io/enabled, operator: Exists}]}
"""


def test_the_policy_file_with_tenancy_is_still_a_scheduling_policy() -> None:
    assert "research" in parse_policy(POLICY).queues  # the scheduler ignores access and namespaceSelector


@pytest.mark.parametrize(("labels", "queue", "allowed"), [
    ({"tenant": "a"}, "research", True),
    ({"tenant": "a", "tier": "frozen"}, "research", False),
    ({"tenant": "b"}, "research", False),
    ({"federator.io/enabled": ""}, "other", True),
    ({}, "other", False),
], ids=["match-labels", "not-in", "wrong-label", "default-exists", "default-missing"])
def test_namespace_selectors(labels: dict[str, str], queue: str, allowed: bool) -> None:
    authz = Authorizer(tenancy_from_document(yaml.safe_load(POLICY)))
    decision = authz.namespace(queue, "ns", labels)
    assert isinstance(decision, Allowed) is allowed
    if isinstance(decision, Denied):
        assert decision.rule is Rule.NAMESPACE and f"queue {queue!r}" in decision.message


def test_admins_by_group_and_the_default_admin() -> None:
    authz = Authorizer(tenancy_from_document(yaml.safe_load(POLICY)))
    assert authz.principal(Peer(None, "token", name="zed", groups=frozenset({"platform"}))).admin
    assert not authz.principal(Peer(None, "token", name="admin")).admin  # tenancy.admins replaces the default
    assert Authorizer().principal(Peer(None, "certificate", name="admin")).admin
    assert Authorizer().principal(Peer(None, "insecure")).admin


@pytest.mark.parametrize(("doc", "field"), [
    ({"tenancy": {"groups": {"g": {"jobs": "all"}}}}, "tenancy.groups.g.jobs"),
    ({"tenancy": {"admins": {"people": ["x"]}}}, "tenancy.admins.people"),
    ({"queues": {"q": {"access": {"users": "alice"}}}}, "queues.q.access.users"),
    ({"queues": {"q": {"namespaceSelector": {"matchExpressions": [{"key": "k", "operator": "Has"}]}}}},
     "queues.q.namespaceSelector.matchExpressions[0].operator"),
], ids=["jobs-value", "admins-field", "users-not-a-list", "operator"])
def test_bad_tenancy_fields_are_named(doc: dict[str, object], field: str) -> None:
    with pytest.raises(TenancyError, match=field.replace("[", r"\[").replace("]", r"\]")):
        tenancy_from_document(doc)


def test_an_empty_selector_selects_everything() -> None:
    bad: list[str] = []
    sel = selector_from_document({}, "s", bad)
    assert sel is not None and sel.matches({}) and not bad


def test_the_owner_is_stamped_from_the_caller_and_shown_by_get_jobs_wide() -> None:
    from federator.cli.output import job_rows
    from federator.jobfile import parse_job
    from federator.model import Job, JobId
    from federator.security.authz import GROUPS_ANNOTATION, USER_ANNOTATION, Principal, owner_of, stamp_owner

    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": "j", "annotations": {USER_ANNOTATION: "mallory", GROUPS_ANNOTATION: "x"}},
                      "spec": {"kind": "training", "resources": {"cpu": "1"}}})
    stamped = stamp_owner(spec, Principal("alice", frozenset({"team-a", "ml"}), claimed=frozenset({"ml"})))
    assert owner_of(stamped) == ("alice", frozenset({"ml"}))  # the credential's groups; policy groups are live
    assert owner_of(stamp_owner(spec, Principal("bob"))) == ("bob", frozenset())
    headers, [row] = job_rows([Job(JobId("j-1"), stamped, 0.0)], wide=True)
    assert row[headers.index("USER")] == "alice"


def test_taking_a_user_out_of_a_policy_group_takes_their_jobs_out_of_it() -> None:
    from federator.jobfile import parse_job
    from federator.model import Job, JobId
    from federator.security.authz import stamp_owner

    def authz(members: list[str]) -> Authorizer:
        return Authorizer(tenancy_from_document({"tenancy": {"groups": {"team-a": {"users": members}}}}))

    before = authz(["alice", "carol"])
    alice = before.principal(Peer(None, "certificate", name="alice"))
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "j"},
                      "spec": {"kind": "training", "resources": {"cpu": "1"}}})
    job = Job(JobId("j-1"), stamp_owner(spec, alice), 0.0)
    carol = Peer(None, "certificate", name="carol")
    assert isinstance(before.job(before.principal(carol), job, manage=True), Allowed)
    after = authz(["carol"])
    assert isinstance(after.job(after.principal(carol), job, manage=False), Denied)


USERS = ["u0", "u1", "u2", "u3"]


@settings(max_examples=100, deadline=None)
@given(groups=st.dictionaries(st.sampled_from(["g0", "g1", "g2"]),
                              st.tuples(st.lists(st.sampled_from(USERS), unique=True),
                                        st.sampled_from(["view", "manage"])), max_size=3),
       owners=st.lists(st.tuples(st.sampled_from([*USERS, ""]), st.sets(st.sampled_from(["g0", "g1", "x"]))),
                       max_size=12),
       caller=st.sampled_from(USERS), claimed=st.sets(st.sampled_from(["g0", "g1", "g2", "x"])))
def test_list_shows_exactly_the_jobs_get_would_show(groups: dict[str, tuple[list[str], str]],
                                                    owners: list[tuple[str, set[str]]], caller: str,
                                                    claimed: set[str]) -> None:
    from federator.jobfile import parse_job
    from federator.model import Job, JobId
    from federator.security.authz import Principal, stamp_owner

    authz = Authorizer(tenancy_from_document({"tenancy": {"admins": {"users": ["root"]}, "groups": {
        g: {"users": members, "jobs": jobs} for g, (members, jobs) in groups.items()}}}))
    spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "j"},
                      "spec": {"kind": "training", "resources": {"cpu": "1"}}})
    jobs = [Job(JobId(f"j{i}"), stamp_owner(spec, Principal(user, claimed=frozenset(gs))) if user else spec, 0.0)
            for i, (user, gs) in enumerate(owners)]
    who = authz.principal(Peer(None, "certificate", name=caller, groups=frozenset(claimed)))
    assert authz.visible(who, jobs) == [j for j in jobs if isinstance(authz.job(who, j, manage=False), Allowed)]


@pytest.mark.parametrize(("default_queue", "level", "said"), [
    ("defaultQueue: {weight: 1}\n", logging.INFO, "takes submissions from tenancy.admins only"),
    ("defaultQueue: {weight: 1, access: {anyone: true}}\n", logging.WARNING,
     "any caller may submit to a queue the policy does not declare"),
    ("defaultQueue: {weight: 1, access: {groups: [platform]}}\n", None, ""),
], ids=["closed-undeclared-queues", "explicitly-open", "default-queue-access-list"])
def test_the_start_says_what_a_queue_nobody_declared_is(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, default_queue: str, level: int | None, said: str) -> None:
    """Outside QA M6: with examples/policy.yaml and tenancy groups, a tenant held to 64 H100 in `research` ran 64
    more in each queue name it invented (each took defaultQueue's settings, no quota). Such queues now take
    admins' jobs only (rule undeclared-queue), and the operator is told so, or warned when they opened them."""
    from federator.server.app import ServeOptions, _authorizer
    from federator.server.policy_file import PolicyFile

    policy = tmp_path / "policy.yaml"
    policy.write_text("tenancy:\n  groups:\n    team-a: {users: [alice]}\n" + default_queue)
    with caplog.at_level(logging.INFO, logger="federator.server"):
        _authorizer(ServeOptions(policy=policy, insecure=True), PolicyFile(policy))
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "defaultQueue" in r.getMessage()]
    if level is None:
        assert not lines, caplog.text
    else:
        ((got, message),) = lines
        assert got == level and said in message and "docs/security.md" in message
