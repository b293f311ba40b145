"""One owner, one reading: the scheduler's owner (`JobSpec.owner`, the owner-share order) and the submitter that
caps and retention count (`security.authz.submitter_of`) both read the recorded user, else the namespace
(`JobSpec.recorded_user`), so the two tell exactly the same jobs apart."""

from __future__ import annotations

from itertools import product

from federator.model import JobKind, JobSpec, Resources
from federator.model.job import USER_ANNOTATION
from federator.security.authz import GROUPS_ANNOTATION, Submitter, owner_of, submitter_of


def _spec(namespace: str, *annotations: tuple[str, str]) -> JobSpec:
    return JobSpec(name="j", kind=JobKind.TRAINING, replicas=1, resources=Resources(cpu_milli=1000),
                   namespace=namespace, annotations=annotations)


SPECS = {
    "user alice": _spec("default", (USER_ANNOTATION, "alice")),
    "user alice, another namespace and groups": _spec("team-a", (GROUPS_ANNOTATION, "g"), (USER_ANNOTATION, "alice")),
    "user bob": _spec("default", (USER_ANNOTATION, "bob")),
    "namespace default": _spec("default"),
    "namespace alice": _spec("alice"),  # a user and a namespace of one name: two owners
    "empty user annotation, namespace alice": _spec("alice", (USER_ANNOTATION, "")),
    "empty user annotation, namespace default": _spec("default", (USER_ANNOTATION, "")),
    # a key given twice (no client can send it: a map, a YAML mapping): both read the last, as `annotation` does
    "user alice, then an empty one": _spec("default", (USER_ANNOTATION, "alice"), (USER_ANNOTATION, "")),
    "an empty one, then user alice": _spec("default", (USER_ANNOTATION, ""), (USER_ANNOTATION, "alice")),
}


def test_the_scheduler_owner_and_the_submitter_tell_the_same_jobs_apart() -> None:
    for (a_name, a), (b_name, b) in product(SPECS.items(), repeat=2):
        assert (a.owner == b.owner) == (submitter_of(a) == submitter_of(b)), (a_name, b_name)


def test_each_reads_the_recorded_user_else_the_namespace() -> None:
    expected = {
        "user alice": Submitter(user="alice"),
        "user alice, another namespace and groups": Submitter(user="alice"),
        "user bob": Submitter(user="bob"),
        "namespace default": Submitter(namespace="default"),
        "namespace alice": Submitter(namespace="alice"),
        "empty user annotation, namespace alice": Submitter(namespace="alice"),
        "empty user annotation, namespace default": Submitter(namespace="default"),
        "user alice, then an empty one": Submitter(namespace="default"),
        "an empty one, then user alice": Submitter(user="alice"),
    }
    for name, spec in SPECS.items():
        want = expected[name]
        assert submitter_of(spec) == want, name
        assert spec.owner == (f"user {want.user}" if want.user else f"namespace {want.namespace}"), name
        assert spec.recorded_user == owner_of(spec)[0] == want.user, name
