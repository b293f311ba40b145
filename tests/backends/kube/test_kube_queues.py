"""Queue objects -> the scheduler's queues: the same shape and validator as the policy file's queues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from federator.backends.kube.queue_controller import QueueController
from federator.backends.kube.queues import (
    QueueUsage,
    queue_from_object,
    queue_status,
    queue_usage,
    with_queues,
)
from federator.model import Job, JobId, JobPhase, Placement, PlacementId
from federator.scheduler import PolicyError, QueueConfig, Quota, Scheduler, parse_policy
from federator.security.authz import Allowed, Authorizer, Denied, Principal, Rule, tenancy_from_document
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import GiB, job

POLICY = """
queues:
  research: {weight: 2, quota: {gpus: {H100: 64}}}
  serving: {weight: 3}
defaultQueue: {weight: 1, quota: {gpus: {H100: 4}}}
preemption: {enabled: false}
"""


def queue_object(name: str, spec: dict[str, Any] | None, *, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "federator.io/v1alpha1", "kind": "Queue",
                           "metadata": {"name": name, "uid": f"uid-{name}", "generation": generation}}
    if spec is not None:
        obj["spec"] = spec
    return obj


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param(None, QueueConfig(), id="no-spec"),
    pytest.param({}, QueueConfig(), id="empty-spec"),
    pytest.param({"weight": 3}, QueueConfig(weight=3.0), id="weight"),
    pytest.param({"weight": 0.5}, QueueConfig(weight=0.5), id="fractional-weight"),
    pytest.param({"quota": {"gpus": {"H100": 8}}}, QueueConfig(quota=Quota(accelerator_milli={"H100": 8000})),
                 id="gpu-quota"),
    pytest.param({"quota": {"gpus": {"L40S": "500m", "A100": "16"}}},
                 QueueConfig(quota=Quota(accelerator_milli={"L40S": 500, "A100": 16000})), id="gpu-quantities"),
    pytest.param({"weight": 2, "quota": {"cpu": "200", "memory": "1Ti"}},
                 QueueConfig(weight=2.0, quota=Quota(cpu_milli=200_000, memory_bytes=1024 * GiB)),
                 id="cpu-and-memory"),
    pytest.param({"maxPendingJobs": 500}, QueueConfig(max_pending_jobs=500), id="max-pending-jobs"),
])
def test_a_queue_object_is_a_policy_queue(spec: dict[str, Any] | None, expected: QueueConfig) -> None:
    assert queue_from_object(queue_object("research", spec)) == expected


def test_a_queue_object_means_what_the_same_queue_in_the_policy_file_means() -> None:
    spec = {"weight": 2, "quota": {"gpus": {"H100": 64, "A100": "200"}, "cpu": 2000, "memory": "16Ti"},
            "maxPendingJobs": 1000}
    from_file = parse_policy("queues:\n  research: " + repr(spec).replace("'", '"')).queues["research"]
    assert queue_from_object(queue_object("research", spec)) == from_file


@pytest.mark.parametrize(("spec", "field"), [
    pytest.param({"weight": 0}, "spec.weight: must be a positive number", id="weight-zero"),
    pytest.param({"weight": "heavy"}, "spec.weight: must be a positive number", id="weight-text"),
    pytest.param({"quota": {"memory": "500m"}}, "spec.quota.memory: '500m' is not a whole number of bytes",
                 id="milli-bytes"),
    pytest.param({"quota": {"cpu": "0.0001"}}, "spec.quota.cpu:", id="sub-milli-cpu"),
    pytest.param({"quota": {"gpus": {"H100": -1}}}, "spec.quota.gpus.H100:", id="negative-gpus"),
    pytest.param({"quota": {"gpus": [8]}}, "spec.quota.gpus: must map accelerator models", id="gpus-not-a-map"),
    pytest.param({"quota": {"disks": 3}}, "spec.quota.disks: is not a known field", id="unknown-quota-field"),
    pytest.param({"colour": "red"}, "spec.colour: is not a known field", id="unknown-field"),
    pytest.param({"maxPendingJobs": 0}, "spec.maxPendingJobs: must be a positive integer, got 0", id="cap-zero"),
    pytest.param({"maxPendingJobs": "lots"}, "spec.maxPendingJobs: must be a positive integer", id="cap-text"),
    pytest.param("big", "spec: must be a mapping", id="spec-not-a-map"),
])
def test_a_bad_queue_object_is_refused_naming_the_queue_and_field(spec: Any, field: str) -> None:
    with pytest.raises(PolicyError) as err:
        queue_from_object(queue_object("research", spec))
    assert str(err.value).startswith("Queue research: ")
    assert field in str(err.value)


def test_queue_objects_override_and_add_to_the_policy_files_queues() -> None:
    base = parse_policy(POLICY)
    research = QueueConfig(weight=1.0, quota=Quota(accelerator_milli={"H100": 8000}))
    config = with_queues(base, {"research": research, "new": QueueConfig(weight=5.0)})
    assert config.queue("research") == research  # overridden
    assert config.queue("serving") == base.queue("serving")  # the file's, untouched
    assert config.queue("new").weight == 5.0  # added
    assert config.queue("elsewhere") == base.default_queue
    assert (config.preemption, config.score_weights) == (base.preemption, base.score_weights)
    assert with_queues(base, {}) == base  # every Queue deleted: the policy file as it was
    assert base.queue("research").quota.accelerator_milli == {"H100": 64000}  # the base is never changed


def _job(name: str, queue: str, phase: JobPhase, *, gpus: float = 8, placements: tuple[tuple[str, int], ...] = ()
         ) -> Job:
    spec = job(name, gpus=gpus, queue=queue, replicas=sum(r for _, r in placements) or 1)
    placed = [Placement(PlacementId(f"{name}.g1.c{i}"), JobId(name), f"c{i}", "east", replicas, model, 1,
                        phase=phase if phase.is_active else JobPhase.SUCCEEDED)
              for i, (model, replicas) in enumerate(placements)]
    return Job(JobId(name), spec, submitted_at=0.0, phase=phase, placements=placed)


def test_queue_usage_counts_gpus_held_per_model_and_jobs_by_phase() -> None:
    jobs = [
        _job("a", "research", JobPhase.RUNNING, placements=(("NVIDIA-H100", 2),)),
        _job("b", "research", JobPhase.PLACED, gpus=0.5, placements=(("NVIDIA-L40S", 1),)),
        _job("c", "research", JobPhase.PLACED, placements=(("NVIDIA-H100", 1), ("NVIDIA-A100", 1))),
        _job("d", "research", JobPhase.PENDING),
        _job("e", "research", JobPhase.SUCCEEDED, placements=(("NVIDIA-H100", 4),)),  # holds nothing now
        _job("f", "serving", JobPhase.PENDING),
    ]
    usage = queue_usage(jobs)
    assert usage["research"] == QueueUsage({"NVIDIA-A100": 8.0, "NVIDIA-H100": 24.0, "NVIDIA-L40S": 0.5}, 1, 3)
    assert usage["serving"] == QueueUsage({}, 1, 0)


def test_queue_status_says_whether_the_scheduler_uses_it() -> None:
    usage = QueueUsage({"NVIDIA-H100": 8.0, "NVIDIA-L40S": 0.5}, pending_jobs=1, running_jobs=1)
    ok = queue_status(generation=3, problem=None, usage=usage, now=1000.0)
    assert ok["observedGeneration"] == 3
    assert ok["acceleratorsInUse"] == {"NVIDIA-H100": 8, "NVIDIA-L40S": 0.5}
    assert (ok["pendingJobs"], ok["runningJobs"]) == (1, 1)
    (valid,) = ok["conditions"]
    assert (valid["type"], valid["status"], valid["reason"]) == ("Valid", "True", "Accepted")

    later = queue_status(generation=3, problem=None, usage=QueueUsage(), old_conditions=ok["conditions"], now=2000.0)
    assert later["conditions"][0]["lastTransitionTime"] == valid["lastTransitionTime"]  # no transition
    bad = queue_status(generation=4, problem="Queue research: spec.quota.memory: bad", usage=QueueUsage(),
                       old_conditions=ok["conditions"], now=3000.0)
    (invalid,) = bad["conditions"]
    assert (invalid["status"], invalid["reason"]) == ("False", "Invalid")
    assert "spec.quota.memory" in invalid["message"]
    assert invalid["lastTransitionTime"] != valid["lastTransitionTime"]


class _NoApi:
    server = "https://host.invalid"


def test_the_controller_feeds_queue_objects_to_the_federators_scheduler(tmp_path: Path) -> None:
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), scheduler=Scheduler(parse_policy(POLICY)))
    ctl = QueueController(fed, _NoApi())  # type: ignore[arg-type]
    research = queue_object("research", {"quota": {"gpus": {"H100": 8}}})
    broken = queue_object("broken", {"quota": {"memory": "500m"}})

    ctl.apply([research, broken])
    assert fed.scheduler.config.queue("research").quota.accelerator_milli == {"H100": 8000}
    assert fed.scheduler.config.queue("serving").weight == 3.0  # the file's
    assert "broken" not in fed.scheduler.config.queues  # ignored: defaultQueue applies
    assert "spec.quota.memory" in ctl.problems["broken"]

    raised = queue_object("research", {"quota": {"gpus": {"H100": 16}}}, generation=2)
    ctl.apply([raised, broken])
    assert fed.scheduler.config.queue("research").quota.accelerator_milli == {"H100": 16000}

    before = fed.scheduler
    ctl.apply([raised, broken])
    assert fed.scheduler is before  # nothing changed: the scheduler is not rebuilt

    ctl.apply([])  # both deleted
    assert fed.scheduler.config == parse_policy(POLICY)  # back to the policy file's research queue
    assert ctl.problems == {}


def test_queue_objects_give_the_authorizer_their_access_lists_and_namespace_selectors(tmp_path: Path) -> None:
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), scheduler=Scheduler(parse_policy(POLICY)))
    authz = Authorizer(tenancy_from_document({"queues": {"serving": {"access": {"users": ["ops"]}}}}))
    ctl = QueueController(fed, _NoApi(), authz=authz)  # type: ignore[arg-type]
    team = queue_object("team-a", {"access": {"groups": ["team-a"]},
                                   "namespaceSelector": {"matchLabels": {"tenant": "a"}}})
    bad = queue_object("bad", {"namespaceSelector": {"matchLabels": "tenant=a"}})
    ctl.apply([team, bad])
    alice, bob = Principal("alice", frozenset({"team-a"})), Principal("bob")
    assert isinstance(authz.submit(alice, "team-a"), Allowed)
    assert isinstance(authz.submit(bob, "team-a"), Denied)
    assert isinstance(authz.submit(bob, "serving"), Denied)  # the policy file's list stays
    assert isinstance(authz.namespace("team-a", "ns-a", {"tenant": "a"}), Allowed)
    assert isinstance(authz.namespace("team-a", "ns-b", {}), Denied)
    assert "spec.namespaceSelector.matchLabels" in ctl.problems["bad"]  # invalid: ignored, Valid=False
    ctl.apply([])  # deleted: back to the file's rules, where team-a is declared by nobody
    gone = authz.submit(bob, "team-a")  # the file has an access list (multi-tenant): undeclared takes admins only
    assert isinstance(gone, Denied) and gone.rule is Rule.UNDECLARED_QUEUE


def test_a_queue_object_with_an_access_list_and_no_namespace_selector_is_named_in_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """secqa61 M2: its gRPC submitters may make FederatedJobs in any namespace, another tenant's included; said once
    when the Queue objects change which queues are open, not at every sync."""
    import logging

    fed = Federator(store=SqliteJobStore(tmp_path / "db"), scheduler=Scheduler(parse_policy(POLICY)))
    serving = {"access": {"users": ["ops"]}, "namespaceSelector": {"matchLabels": {"t": "s"}}}
    authz = Authorizer(tenancy_from_document({"queues": {"serving": serving}}))
    ctl = QueueController(fed, _NoApi(), authz=authz)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="federator.kube.queues"):
        ctl.apply([queue_object("team-a", {"access": {"groups": ["team-a"]},
                                           "namespaceSelector": {"matchLabels": {"tenant": "a"}}})])
        assert "namespaceSelector (nor" not in caplog.text  # every queue has one: nothing said
        open_b = queue_object("team-b", {"access": {"groups": ["team-b"]}})
        ctl.apply([open_b])
        ctl.apply([open_b])
    said = [r.getMessage() for r in caplog.records if "have no namespaceSelector" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("--policy: queue(s) team-b have no namespaceSelector"), said
