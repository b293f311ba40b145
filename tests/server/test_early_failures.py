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
from server_support import Clock, MemoryStore, capacity, drained, join, make, spec

from federator.backends.kube.resources import job_from_resource, job_status, spec_of
from federator.jobfile import parse_job
from federator.model import ClusterState, Job, JobId, JobPhase, JobSpec, ReasonCode
from federator.security.authz import Submitter, recorded_owner
from federator.server.blame import LAPSE_WINDOWS, Blame, Blames
from federator.server.clusters import FAILOVER_ANNOTATION, ClusterRecord
from federator.server.early_failures import EARLY_FAILURE_ANNOTATION, EarlyFailurePolicy
from federator.server.federator import Federator
from federator.server.intake import SubmitError
from federator.server.orders import CancelOrder
from federator.server.quarantine import Held, Quarantine, QuarantinePolicy
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
    # still FailedEarly while the retry waits, the failure said first, then the wait (outside HPC QA, H6)
    assert job.pending_reason.code is ReasonCode.FAILED_EARLY, job.pending_reason
    assert job.pending_reason.message.startswith(f"failed on liar after 4s: {CRASH}; placing it once more, "
                                                 "elsewhere (--early-failure-seconds 300; federator.io/early-failure: "
                                                 "fail for none); then: RecentlyRefused: "), job.pending_reason
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


def test_a_job_annotated_to_fail_is_not_placed_again_nor_blames_its_cluster() -> None:
    """Outside HPC QA, H6: a user whose script is at fault (exit 1 after 3 s) saw it run, and billed, twice, and
    could not say no (Slurm's --no-requeue). `federator.io/early-failure: fail` fails it at once, counted."""
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    rec = join(fed, "x")
    jobs = [fed.submit(owned(f"mine-{i}", f"user-{i}", **{EARLY_FAILURE_ANNOTATION: "fail"})) for i in range(3)]
    for job in jobs:
        crash(fed, rec, placed(fed, job), clock=clock)
        assert job.phase is JobPhase.FAILED and not job.early_failure and len(job.placements) == 1
        assert job.message == f"{CRASH} (failed 4s after its start; not placed again: {EARLY_FAILURE_ANNOTATION}: " \
                              "fail)"
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_placement_early_failures_total{cluster="x"} 3.0' in scrape
    assert 'federator_placement_retries_total{reason="FailedEarly"}' not in scrape
    assert fed.early.quarantine.current(clock.now) == frozenset()
    assert all(fed.early.quarantine.blames.job_at_fault(j.job_id) is None for j in jobs)  # nothing against x


@pytest.mark.parametrize("policy", ["never", "", "Fail"], ids=["unknown-word", "empty", "case"])
def test_a_bad_early_failure_policy_is_refused_naming_the_annotation(policy: str) -> None:
    fed = make(MemoryStore(), Clock(), early_failures=POLICY)
    with pytest.raises(SubmitError, match=f"metadata.annotations\\[{EARLY_FAILURE_ANNOTATION}\\]: must be one of "
                                          "retry, fail"):
        fed.submit(spec("bad", **{EARLY_FAILURE_ANNOTATION: policy}))
    assert not fed.jobs


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


def _fail_three(fed: Federator, clock: Clock, rec: ClusterRecord, owners: tuple[str, ...]) -> list[Job]:
    jobs = [fed.submit(owned(f"j{i}", who)) for i, who in enumerate(owners)]
    fed.schedule_once()
    for job in jobs:
        (p,) = job.placements
        crash(fed, rec, p.placement_id, after=1.0, clock=clock)
    return jobs


def _run_elsewhere(fed: Federator, rec: ClusterRecord, jobs: list[Job]) -> list[str]:
    """Each job's once-more placement goes to `rec` and turns Running there."""
    fed.schedule_once()
    pids = []
    for job in jobs:
        (p,) = job.placements
        assert p.cluster == rec.name
        fed.acked(rec, p.placement_id)
        fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
        pids.append(p.placement_id)
    return pids


def test_three_early_failures_of_two_owners_whose_jobs_then_run_elsewhere_quarantine_a_cluster() -> None:
    """Updated with the evidence rule (outside QA's soak, finding 1): the failures count once the jobs, placed
    once more, succeed on the honest cluster; before, they counted at once."""
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    liar = join(fed, "liar")
    jobs = _fail_three(fed, clock, liar, ("alice", "bob", "alice"))
    assert fed.early.quarantine.current(clock.now) == frozenset()  # no evidence yet: the jobs have run nowhere
    good = join(fed, "good")
    for job, pid in zip(jobs, _run_elsewhere(fed, good, jobs), strict=True):
        fed.job_update(good, pid, JobPhase.SUCCEEDED, "")
        assert job.phase is JobPhase.SUCCEEDED
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_cluster_quarantines_total{cluster="liar"} 1.0' in scrape
    assert 'federator_cluster_quarantined{cluster="liar",region="r"} 1.0' in scrape
    assert fed.clusters["liar"].state is ClusterState.READY  # its lease and what it runs are untouched

    new = fed.submit(owned("next", "carol"))
    fed.report(good, capacity(free=0))
    fed.schedule_once()
    assert new.phase is JobPhase.PENDING and new.pending_reason is not None
    assert "liar is Quarantined" in new.pending_reason.message
    fed.report(good, capacity())
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


def test_a_blame_counts_once_the_job_has_run_elsewhere_for_the_early_failure_window() -> None:
    """Running is not yet evidence (a crashing job runs a moment first); not failing early is."""
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    liar = join(fed, "liar")
    jobs = _fail_three(fed, clock, liar, ("alice", "bob", "carol"))
    good = join(fed, "good")
    _run_elsewhere(fed, good, jobs)
    clock.now += EARLY - 1
    assert fed.early.quarantine.current(clock.now) == frozenset()
    clock.now += 1
    assert fed.early.quarantine.current(clock.now) == {"liar"}


def test_several_owners_jobs_that_crash_wherever_they_run_quarantine_no_cluster() -> None:
    """Outside QA's soak, finding 1, in miniature: 3 users' jobs that crash at start, each placed once more and
    failing there too, quarantined 2 of 3 healthy clusters within 3 s (all 9 in the soak). A job that fails
    early on two clusters is its own fault: neither failure counts."""
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    recs = {name: join(fed, name) for name in ("e1", "c1", "w1")}
    jobs = [fed.submit(owned(f"crash-{who}-{i}", who)) for who in ("alice", "bob", "carol") for i in (1, 2)]
    for _ in range(2):  # the first placement, then the once more
        fed.schedule_once()
        for job in jobs:
            for p in job.placements:
                if p.phase is JobPhase.PLACED:
                    crash(fed, recs[p.cluster], p.placement_id, after=1.0, clock=clock)
    assert all(job.phase is JobPhase.FAILED for job in jobs), [j.pending_reason for j in jobs]
    assert fed.early.quarantine.current(clock.now) == frozenset()
    good = fed.submit(owned("good", "dave"))
    fed.schedule_once()
    assert good.phase is JobPhase.PLACED, good.pending_reason
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_placement_early_failures_total{cluster="w1"}' in scrape  # still counted as early failures


def test_early_failures_of_jobs_that_keep_their_cluster_do_not_quarantine_it() -> None:
    """No once-more placement, so nothing shows whose fault it was (server/blame.py)."""
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    rec = join(fed, "x")
    fed.report(fed.connect(cluster="y", region="r", labels={}), capacity(free=0))  # Ready, no room: all go to x
    jobs = [fed.submit(owned(f"k{i}", who, **{FAILOVER_ANNOTATION: "keep"}))
            for i, who in enumerate(("alice", "bob", "carol"))]
    fed.schedule_once()
    for job in jobs:
        for p in job.placements:
            crash(fed, fed.clusters[p.cluster], p.placement_id, after=1.0, clock=clock)
    assert all(job.phase is JobPhase.FAILED and job.clusters == ["x"] for job in jobs)
    assert fed.early.quarantine.current(clock.now) == frozenset()
    assert rec.state is ClusterState.READY


def _confirm_three(quarantine: Quarantine, cluster: str, now: float) -> Held | None:
    held = None
    for who in ("alice", "bob", "alice"):
        held = quarantine.confirm(Blame(cluster, Submitter(user=who), now), now) or held
    return held


@pytest.mark.parametrize(("ready", "quarantined"), [
    (1, 0), (2, 1), (3, 1), (4, 2), (9, 4),
], ids=["one-none", "two-one", "three-one", "four-two", "nine-four"])
def test_quarantine_never_takes_out_more_than_half_the_ready_clusters(ready: int, quarantined: int) -> None:
    """Outside QA's soak quarantined 9 of 9 clusters: every cluster that meets the rule beyond half the Ready ones
    (rounded down) is not quarantined, and the capped counter says so."""
    capped: list[str] = []
    quarantine = Quarantine(QuarantinePolicy(failures=3), ready=lambda: ready, on_capped=capped.append)
    names = [f"c{i}" for i in range(ready)]
    held = [name for name in names if _confirm_three(quarantine, name, 10.0) is not None]
    assert held == names[:quarantined]
    assert quarantine.current(10.0) == frozenset(held)
    assert capped == names[quarantined:]


def test_a_capped_cluster_is_quarantined_at_its_next_failure_once_the_cap_allows() -> None:
    quarantine = Quarantine(QuarantinePolicy(failures=3, seconds=100.0), ready=lambda: 3)
    assert _confirm_three(quarantine, "a", 0.0) is not None
    assert _confirm_three(quarantine, "b", 1.0) is None  # capped: one of three at most
    assert quarantine.confirm(Blame("b", Submitter(user="carol"), 101.0), 101.0) is not None  # a's ended
    assert quarantine.current(101.0) == {"b"}


def test_a_capped_quarantine_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    join(fed, "only")
    quarantine = fed.early.quarantine
    assert _confirm_three(quarantine, "only", clock.now) is None
    assert "cluster only not quarantined" in caplog.text and "0 of 1 Ready clusters" in caplog.text
    scrape = generate_latest(fed.metrics.registry).decode()
    assert 'federator_cluster_quarantines_capped_total{cluster="only"} 1.0' in scrape


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


@pytest.mark.parametrize(("ends", "after", "blamed"), [
    ("succeeded", 1.0, True), ("cancelled", 1.0, False), ("cancelled", EARLY, True), ("failed-late", EARLY + 1, True),
], ids=["succeeded-soon", "cancelled-soon", "cancelled-after-window", "failed-after-window"])
def test_how_the_once_more_placement_ends_decides_the_blame(ends: str, after: float, blamed: bool) -> None:
    """server/blame.py: the job ran elsewhere (succeeded, or lasted the window) or nothing shows either way."""
    blames = Blames(seconds=EARLY, window=600.0)
    blames.failed_early("j", "bad", Submitter(user="alice"), 0.0)
    blames.ran("j", "bad", 1.0)  # a Running on the blamed cluster itself shows nothing
    blames.ran("j", "good", 2.0)
    got = blames.ended("j", "good", succeeded=ends == "succeeded", now=2.0 + after)
    assert (got is not None) is blamed
    assert blames.confirmed(1e6) == []  # settled either way: nothing left pending


def test_a_blame_whose_job_never_runs_elsewhere_lapses() -> None:
    blames = Blames(seconds=EARLY, window=600.0)
    blames.failed_early("j", "bad", Submitter(user="alice"), 0.0)
    assert blames.confirmed(100.0) == []
    blames.ran("j", "good", LAPSE_WINDOWS * (600.0 + EARLY) + 1)  # too late: it lapses before it could count
    assert blames.confirmed(LAPSE_WINDOWS * (600.0 + EARLY) + 1) == []
    assert blames.confirmed(1e6) == []
