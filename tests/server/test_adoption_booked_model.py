"""An adopted placement is booked on the accelerator model its agent says it runs on (JobUpdate.accelerator_model,
server/adoption.py), checked against the job's alternatives and the cluster's pools, never trusted. Before, a gang
accepting [H100, A100] placed on A100 because H100 was full was adopted after a restore of the store as H100: billed,
counted against quota and fair share on H100, and the H100 pool's free count wrong."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from server_support import H100, Clock, MemoryStore, make

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.jobfile import parse_job
from federator.model import ClusterCapacity, JobId, JobPhase, JobSpec
from federator.security.limits import RejectReason
from federator.server.federator import Federator
from federator.server.intake import SubmitError
from federator.server.reapplied import job_digest
from federator.server.services import AgentService
from federator.server.validation import check_update

from builders import cluster, pool

A100 = "NVIDIA-A100-SXM4-80GB"


def _capacity(h100_free: int, a100_free: int, *placement_ids: str) -> ClusterCapacity:
    c = cluster("c", "r", pool(H100, nodes=2, free=h100_free), pool(A100, nodes=2, free=a100_free)).capacity
    return replace(c, placement_ids=frozenset(placement_ids))


def _accepting_both() -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "a"},
                      "spec": {"kind": "training", "replicas": 2, "acceleratorModels": [H100, A100],
                               "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})


def _restored(clock: Clock) -> tuple[Federator, str]:
    """A store restored from a backup taken while gang a (2 x 8, H100 or A100) was Pending; it started since on c's
    A100 pool (H100 was full), as a.g1.c. The restored federator and that placement's id."""
    live, backup = MemoryStore(), MemoryStore()
    first = make(live, clock)
    a = first.submit(_accepting_both())
    backup.put([a])
    first.report(first.connect(cluster="c", region="r", labels={}), _capacity(0, 8))
    first.schedule_once()
    (placed,) = a.placements
    assert placed.accelerator_model == A100
    return make(backup, clock, orphan_grace=1800.0), placed.placement_id


def _adopted(said: str) -> list[tuple[str, str, int]]:
    """c's agent re-syncs, saying the gang runs on `said`: the adopted placement's model, vendor and alternative."""
    clock = Clock()
    fed, pid = _restored(clock)
    rec = fed.connect(cluster="c", region="r", labels={})
    update = agent_pb2.JobUpdate(placement_id=pid, phase=convert.phase_to_pb(JobPhase.RUNNING),
                                 message="2 replicas running", resync=True, accelerator_model=said)
    assert AgentService(fed).handle(rec, agent_pb2.AgentMessage(job_update=update)) is None  # the agent's re-sync
    fed.report(rec, _capacity(8, 0, pid))  # its A100 gang fills the A100 pool; H100 has room now
    job = fed.jobs[JobId(pid.split(".g")[0])]
    assert job.phase is JobPhase.RUNNING
    return [(p.accelerator_model, p.accelerator_vendor, p.alternative) for p in job.placements]


def test_the_adopted_gang_is_booked_on_the_model_its_agent_says_it_runs_on() -> None:
    assert _adopted(A100) == [(A100, "nvidia", 0)]  # acceleratorModels: one alternative, two models


@pytest.mark.parametrize("said", ["", "NVIDIA-B200", "AMD-Instinct-MI300X"], ids=["older-agent", "forged", "other"])
def test_without_a_model_the_job_and_pools_accept_it_is_booked_as_before_and_logged(
        said: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "federator.server"):
        adopted = _adopted(said)
    assert adopted == [(H100, "nvidia", 0)]  # the first model with a pool on c, as before 0.18.0: not trusted
    assert any("booked on the first model the job accepts" in r.getMessage() for r in caplog.records)


def test_a_malformed_accelerator_model_is_refused_naming_the_field() -> None:
    running = convert.phase_to_pb(JobPhase.RUNNING)
    assert check_update(agent_pb2.JobUpdate(placement_id="a-1.g1.c", phase=running, accelerator_model=A100),
                        None) is None
    for bad in ("NVIDIA A100", "x" * 254):
        refusal = check_update(agent_pb2.JobUpdate(placement_id="a-1.g1.c", phase=running, accelerator_model=bad),
                               None)
        assert refusal is not None and refusal.reason is RejectReason.MALFORMED
        assert refusal.message.startswith("job_update.accelerator_model: ")


def test_a_job_may_not_carry_the_model_annotation_the_agent_keeps() -> None:
    """The agent's mark on the workload it creates (federator.io/accelerator-model): refused at submit, naming the
    field, as the agent's other keys."""
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "w"},
           "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"},
                    "template": {"metadata": {"annotations": {"federator.io/accelerator-model": A100}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    fed = make(MemoryStore(), Clock())
    with pytest.raises(SubmitError, match=r"spec\.template\.metadata\.annotations\[federator\.io/accelerator-model\]"):
        fed.submit(parse_job(doc))


def test_a_job_applied_again_takes_back_its_gang_on_the_model_it_runs_on() -> None:
    """The other adoption after a restore (server/reapplied.py: a job created since the snapshot, applied again)
    books by the same word."""
    clock = Clock()
    first = make(MemoryStore(), clock)
    job = first.submit(_accepting_both())
    first.report(first.connect(cluster="c", region="r", labels={}), _capacity(0, 8))
    first.schedule_once()
    (placed,) = job.placements
    fed = make(MemoryStore(), clock, orphan_grace=1800.0)  # the snapshot predates the job
    rec = fed.connect(cluster="c", region="r", labels={})
    update = agent_pb2.JobUpdate(placement_id=placed.placement_id, phase=convert.phase_to_pb(JobPhase.RUNNING),
                                 resync=True, job_digest=job_digest(job.spec), accelerator_model=A100)
    assert AgentService(fed).handle(rec, agent_pb2.AgentMessage(job_update=update)) is None
    fed.report(rec, _capacity(8, 0, placed.placement_id))
    again = fed.submit(_accepting_both())  # kubectl apply of the same manifest
    assert (again.phase, [(p.placement_id, p.accelerator_model) for p in again.placements]) == (
        JobPhase.RUNNING, [(placed.placement_id, A100)])


def _two_vendors(order: tuple[str, ...], busy: tuple[str, ...], *placement_ids: str) -> ClusterCapacity:
    """c's pools of H100 by vendor, in the report's `order`; those of `busy` full (16 devices in use)."""
    pools = {v: replace(pool(H100, nodes=2, free=0 if v in busy else 8), vendor=v) for v in order}
    return replace(cluster("c", "r", *pools.values()).capacity, placement_ids=frozenset(placement_ids))


def _adopted_from_report(order: tuple[str, ...], busy: tuple[str, ...]) -> str:
    """Gang a (2 x 8 of H100, any vendor) ran on c since a backup; c's agent says H100 and reports its pools in
    `order`: the vendor the adopted placement is booked on."""
    clock = Clock()
    live, backup = MemoryStore(), MemoryStore()
    first = make(live, clock)
    a = first.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                "metadata": {"name": "a"},
                                "spec": {"kind": "training", "replicas": 2, "resources": {"cpu": "4", "memory": "16Gi"},
                                         "accelerators": [{"model": H100, "count": 8}]}}))
    backup.put([a])
    first.report(first.connect(cluster="c", region="r", labels={}), _capacity(8, 8))
    first.schedule_once()
    (placed,) = a.placements
    fed = make(backup, clock, orphan_grace=1800.0)
    rec = fed.connect(cluster="c", region="r", labels={})
    update = agent_pb2.JobUpdate(placement_id=placed.placement_id, phase=convert.phase_to_pb(JobPhase.RUNNING),
                                 resync=True, accelerator_model=H100)
    assert AgentService(fed).handle(rec, agent_pb2.AgentMessage(job_update=update)) is None
    fed.report(rec, _two_vendors(order, busy, placed.placement_id))
    (adopted,) = fed.jobs[a.job_id].placements
    assert fed.jobs[a.job_id].phase is JobPhase.RUNNING and adopted.accelerator_model == H100
    return adopted.accelerator_vendor


@pytest.mark.parametrize("order", [("nvidia", "acme"), ("acme", "nvidia")], ids=["nvidia-first", "acme-first"])
def test_two_vendors_sharing_the_model_name_the_one_whose_devices_are_in_use_is_booked(
        order: tuple[str, ...], caplog: pytest.LogCaptureFixture) -> None:
    """The agent says the model, not the vendor: before, the pool the report listed first was booked (nvidia's,
    idle, for a gang running on acme's), unsaid (review60 R2)."""
    with caplog.at_level(logging.WARNING, "federator.server"):
        assert _adopted_from_report(order, busy=("acme",)) == "acme"  # nvidia's pool has nothing in use
    assert not any("JobUpdate does not say the vendor" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("order", [("nvidia", "acme"), ("acme", "nvidia")], ids=["nvidia-first", "acme-first"])
def test_two_vendors_that_could_each_hold_it_book_one_by_name_and_say_so(
        order: tuple[str, ...], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "federator.server"):
        assert _adopted_from_report(order, busy=("acme", "nvidia")) == "acme"  # the same whatever the order
    said = [r.getMessage() for r in caplog.records if "JobUpdate does not say the vendor" in r.getMessage()]
    assert len(said) == 1 and "pools of vendors acme, nvidia share" in said[0]
