"""A placement Failed soon after it started is placed once more elsewhere; a cluster that fails several owners'
work that way is quarantined (server/early_failures.py, server/quarantine.py).

Outside QA's black-hole provider (finding F02) claimed room at a price of 0, took every tenant's jobs and
reported each Failed at once: 6 of 6 jobs of two tenants failed within seconds while an honest cluster had room.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, capacity, join, make, spec

from federator.backends.kube.resources import job_from_resource, job_status, spec_of
from federator.jobfile import parse_job
from federator.model import ClusterState, Job, JobId, JobPhase, JobSpec, ReasonCode
from federator.security.authz import recorded_owner
from federator.server.clusters import FAILOVER_ANNOTATION, ClusterRecord
from federator.server.early_failures import EarlyFailurePolicy
from federator.server.federator import Federator
from federator.server.orders import CancelOrder, Order
from federator.server.quarantine import QuarantinePolicy
from federator.store import SqliteJobStore

CRASH = "CUDA error: an illegal memory access was encountered (exit 139)"
EARLY = 300.0
POLICY = EarlyFailurePolicy(seconds=EARLY, quarantine=QuarantinePolicy(failures=3, window=600.0, seconds=1800.0))


def owned(name: str, owner: str, **annotations: str) -> JobSpec:
    return recorded_owner(spec(name, **annotations), owner)


def placed(fed: Federator, job: Job) -> str:
    fed.schedule_once()
    assert job.phase is JobPhase.PLACED, job.pending_reason
    (p,) = job.placements
    return p.placement_id


def drained(rec: ClusterRecord) -> list[Order]:
    out = []
    while not rec.outbox.empty():
        order = rec.outbox.get_nowait()
        assert order is not None
        out.append(order)
    return out


def crash(fed: Federator, rec: ClusterRecord, pid: str, *, after: float = 4.0, clock: Clock) -> None:
    """The member starts the placement and reports it Failed `after` seconds later."""
    fed.acked(rec, pid)
    fed.job_update(rec, pid, JobPhase.RUNNING, "")
    clock.now += after
    fed.job_update(rec, pid, JobPhase.FAILED, CRASH)


def test_an_early_failure_places_the_job_once_more_elsewhere_and_a_second_fails_it_naming_both() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    liar = join(fed, "liar")
    job = fed.submit(owned("train", "alice"))
    crash(fed, liar, placed(fed, job), clock=clock)

    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.FAILED_EARLY
    assert job.pending_reason.message.startswith(f"failed on liar after 4s: {CRASH}; placing it once more, elsewhere")
    assert job.early_failure == f"liar after 4s: {CRASH}"
    fed.schedule_once()
    assert job.phase is JobPhase.PENDING  # the liar is avoided for it; no other cluster yet
    good = join(fed, "good")
    pid = placed(fed, job)
    assert [p.cluster for p in job.placements] == ["good"]

    crash(fed, good, pid, after=10.0, clock=clock)  # a job that really crashes at start: it fails here
    assert job.phase is JobPhase.FAILED
    assert job.message == (f"{CRASH} (failed on good after 10s: {CRASH}; it had failed on liar after 4s: {CRASH} "
                           "and was placed once more)")
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_placement_early_failures_total{cluster="liar"} 1.0' in scrape
    assert 'federator_placement_early_failures_total{cluster="good"} 1.0' in scrape
    assert 'federator_placement_retries_total{reason="FailedEarly"} 1.0' in scrape


def test_a_failure_after_the_window_fails_the_job_as_before() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    rec = join(fed, "x")
    job = fed.submit(owned("long", "alice"))
    crash(fed, rec, placed(fed, job), after=EARLY + 1, clock=clock)
    assert job.phase is JobPhase.FAILED and job.message == CRASH and not job.early_failure


def test_the_window_counts_from_the_start_not_the_placement() -> None:
    """A placement a member's queue held an hour that crashes on its first step failed early."""
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY, start_timeout=0)
    rec = join(fed, "kueue")
    job = fed.submit(owned("queued", "alice"))
    pid = placed(fed, job)
    clock.now += 3600
    crash(fed, rec, pid, clock=clock)
    assert job.phase is JobPhase.PENDING and job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.FAILED_EARLY


def test_a_job_that_keeps_its_cluster_fails_at_once() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    rec = join(fed, "x")
    job = fed.submit(owned("kept", "alice", **{FAILOVER_ANNOTATION: "keep"}))
    crash(fed, rec, placed(fed, job), clock=clock)
    assert job.phase is JobPhase.FAILED and job.message == CRASH and not job.early_failure


def test_a_spread_job_has_only_its_failed_part_placed_again() -> None:
    """The other part serves on (server/partial.py); the job's one retry is spent."""
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    recs = {"a": join(fed, "a"), "b": join(fed, "b")}
    serve = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "serve"},
                       "spec": {"kind": "inference", "replicas": 8,  # 8 x 8: more than one cluster holds
                                "resources": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 8}}})
    job = fed.submit(recorded_owner(serve, "alice"))
    fed.schedule_once()
    assert sorted(p.cluster for p in job.placements) == ["a", "b"]
    first, other = job.placements
    drained(recs[other.cluster])
    crash(fed, recs[first.cluster], first.placement_id, clock=clock)
    assert job.phase is JobPhase.PLACED and job.placements == [other] and job.replicas_waiting == first.replicas
    assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_EARLY
    assert job.early_failure
    assert not any(isinstance(o, CancelOrder) for o in drained(recs[other.cluster]))


def test_the_one_more_placement_is_remembered_across_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    db = tmp_path / "fed.db"
    store = SqliteJobStore(db)
    fed = make(store, clock, early_failures=POLICY)  # type: ignore[arg-type]
    liar = join(fed, "liar")
    job_id = fed.submit(owned("train", "alice")).job_id
    crash(fed, liar, placed(fed, fed.jobs[job_id]), clock=clock)
    store.close()

    again = make(SqliteJobStore(db), clock, early_failures=POLICY)  # type: ignore[arg-type]
    job = again.jobs[job_id]
    assert job.phase is JobPhase.PENDING and job.early_failure == f"liar after 4s: {CRASH}"
    good = join(again, "good")
    crash(again, good, placed(again, job), clock=clock)
    assert job.phase is JobPhase.FAILED and "it had failed on liar after 4s" in job.message


def _fail_three(fed: Federator, clock: Clock, rec: ClusterRecord, owners: tuple[str, ...]) -> None:
    jobs = [fed.submit(owned(f"j{i}", who)) for i, who in enumerate(owners)]
    fed.schedule_once()
    for job in jobs:
        (p,) = job.placements
        crash(fed, rec, p.placement_id, after=1.0, clock=clock)


def test_three_early_failures_of_two_owners_quarantine_a_cluster_for_a_while() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    liar = join(fed, "liar")
    _fail_three(fed, clock, liar, ("alice", "bob", "alice"))
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_cluster_quarantines_total{cluster="liar"} 1.0' in scrape
    assert 'federator_cluster_quarantined{cluster="liar",region="r"} 1.0' in scrape
    assert fed.clusters["liar"].state is ClusterState.READY  # its lease and what it runs are untouched

    new = fed.submit(owned("next", "carol"))
    fed.schedule_once()
    assert new.phase is JobPhase.PENDING and new.pending_reason is not None
    assert "liar is Quarantined" in new.pending_reason.message
    good = join(fed, "good")
    fed.schedule_once()
    assert [p.cluster for p in new.placements] == ["good"]

    clock.now += 1800
    fed.report(liar, capacity())
    late = fed.submit(owned("late", "carol", ))
    fed.report(good, capacity(*(p.placement_id for j in fed.jobs.values() for p in j.placements
                                if p.cluster == "good" and p.phase.is_active), free=0))
    fed.schedule_once()
    assert [p.cluster for p in late.placements] == ["liar"]  # eligible again
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_cluster_quarantined{cluster="liar",region="r"} 0.0' in scrape


def test_one_owners_early_failures_alone_do_not_quarantine_a_cluster() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    rec = join(fed, "x")
    _fail_three(fed, clock, rec, ("alice", "alice", "alice"))
    new = fed.submit(owned("next", "bob"))
    fed.schedule_once()
    assert [p.cluster for p in new.placements] == ["x"]


def test_failures_further_apart_than_the_window_do_not_quarantine() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    rec = join(fed, "x")
    for i, who in enumerate(("alice", "bob", "carol")):
        job = fed.submit(owned(f"j{i}", who))
        crash(fed, rec, placed(fed, job), after=1.0, clock=clock)
        clock.now += 400
    assert fed.early.quarantine.current(clock.now) == frozenset()


def test_0_turns_early_failures_off() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=EarlyFailurePolicy(seconds=0))
    rec = join(fed, "x")
    job = fed.submit(owned("j", "alice"))
    crash(fed, rec, placed(fed, job), clock=clock)
    assert job.phase is JobPhase.FAILED and job.message == CRASH


@pytest.mark.parametrize(("kw", "field"), [
    ({"seconds": -1.0}, "seconds"), ({"seconds": float("nan")}, "seconds"),
], ids=["negative", "nan"])
def test_a_policy_out_of_bounds_is_refused_naming_the_field(kw: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        EarlyFailurePolicy(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "field"), [
    ({"failures": -1}, "failures"), ({"window": 0.0}, "window"), ({"seconds": float("inf")}, "seconds"),
], ids=["negative-failures", "zero-window", "infinite-seconds"])
def test_a_quarantine_policy_out_of_bounds_is_refused_naming_the_field(kw: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        QuarantinePolicy(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("flag", "value", "said"), [
    ("--early-failure-seconds", "nan", "must be 0 or a positive number, got nan"),
    ("--quarantine-failures", "-1", "must be 0 or more, got -1"),
    ("--quarantine-window", "0", "must be a positive number, got 0"),
    ("--quarantine-seconds", "inf", "must be a positive number, got inf"),
], ids=["early-nan", "failures-negative", "window-zero", "quarantine-infinite"])
def test_serve_refuses_a_flag_out_of_bounds_naming_it(tmp_path: Path, flag: str, value: str, said: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    got = subprocess.run([sys.executable, "-m", "federator", "serve", "--insecure", "--db", str(tmp_path / "f.db"),
                          "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", flag, value],
                         capture_output=True, text=True, timeout=60, env=env)
    assert got.returncode == 2
    assert got.stderr.strip() == f"federator serve: {flag}: {said}"


def test_kubernetes_mode_keeps_the_one_more_placement_in_the_federatedjob_status() -> None:
    """Kubernetes mode's store is the FederatedJob status: a new leader must know the job had its one more."""
    cr = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
          "metadata": {"name": "train", "namespace": "team", "uid": "u1", "generation": 1},
          "spec": {"kind": "training", "resources": {"cpu": "1"}}}
    job = Job(job_id=JobId("train-1"), spec=spec_of(cr), submitted_at=1.0, early_failure=f"liar after 4s: {CRASH}")
    status = job_status(job, now=2.0)
    assert status["earlyFailure"] == f"liar after 4s: {CRASH}"
    back = job_from_resource({**cr, "status": status})
    assert back is not None and back.early_failure == job.early_failure
