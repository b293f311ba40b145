"""JobUpdate.ended_at is checked, never trusted (server/end_times.py): clamped to [the job's start, the time the
federator learns of the end], so a wrong or hostile clock can shorten a bill down to the start, never lengthen it;
0 (a 0.7.0 agent) is billed as before, to the time the federator learns of it. Each clamped value is counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, join, make, spec

from federator.accounting.meter import UsageMeter, attach
from federator.accounting.store import SqliteUsageStore
from federator.model import Job, JobPhase, run_seconds
from federator.server.clusters import ClusterRecord
from federator.server.end_times import Clamped, end_time
from federator.server.federator import Federator

START, LEARNED = 1_010.0, 1_300.0  # started at 1,010; the federator hears of the end at 1,300


@pytest.mark.parametrize(("said", "at", "clamped"), [
    (0.0, LEARNED, None),
    (1_030.0, 1_030.0, None),
    (LEARNED, LEARNED, None),
    (START, START, None),
    (5_000.0, LEARNED, Clamped.FUTURE),
    (1_000.0, START, Clamped.BEFORE_START),
    (1.0, START, Clamped.BEFORE_START),
    (float("nan"), LEARNED, Clamped.INVALID),
    (float("inf"), LEARNED, Clamped.INVALID),
    (float("-inf"), LEARNED, Clamped.INVALID),
], ids=["not-said", "inside", "at-learned", "at-start", "future", "before-start", "epoch", "nan", "inf", "-inf"])
def test_an_end_time_is_clamped_into_start_and_learned(said: float, at: float, clamped: Clamped | None) -> None:
    got = end_time(said, start=START, learned=LEARNED)
    assert (got.at, got.clamped) == (at, clamped)


def test_no_start_known_means_the_window_is_the_learned_instant() -> None:
    assert end_time(900.0, start=0.0, learned=LEARNED).at == LEARNED


def clamped_count(fed: Federator, reason: str) -> float:
    scrape = generate_latest(fed.metrics.registry).decode()
    prefix = f'federator_job_end_times_clamped_total{{cluster="a",reason="{reason}"}}'
    return next((float(line.rsplit(" ", 1)[1]) for line in scrape.splitlines() if line.startswith(prefix)), 0.0)


@pytest.mark.parametrize(("said", "finished", "reason"), [
    (1_030.0, 1_030.0, ""),
    (0.0, LEARNED, ""),
    (9_999.0, LEARNED, "future"),
    (500.0, START, "before_start"),
], ids=["said", "not-said", "future", "before-start"])
def test_finished_at_run_time_and_the_usage_record_follow_the_checked_end(
        tmp_path: Path, said: float, finished: float, reason: str) -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    usage = SqliteUsageStore(tmp_path / "usage.db")
    attach(fed, UsageMeter(usage, metrics=fed.metrics, clock=clock))
    a = join(fed, "a")
    job = fed.submit(spec("train"))
    fed.schedule_once()
    (p,) = job.placements
    clock.now = START
    fed.job_update(a, p.placement_id, JobPhase.RUNNING, "")
    assert job.started_at == START
    clock.now = LEARNED
    fed.heard(a)
    fed.job_update(a, p.placement_id, JobPhase.SUCCEEDED, "done", ended_at=said)
    assert job.phase is JobPhase.SUCCEEDED
    assert job.finished_at == finished
    assert run_seconds(job, LEARNED + 1_000) == finished - START
    (record,) = usage.query(since=0.0, until=LEARNED + 1)
    assert (record.start, record.end) == (START, finished)
    if reason:
        assert clamped_count(fed, reason) == 1.0
    else:
        assert all(clamped_count(fed, r.value) == 0.0 for r in Clamped)
    usage.close()


def test_a_failed_placement_ends_its_job_at_its_said_end() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    a = join(fed, "a")
    job = fed.submit(spec("train"))
    fed.schedule_once()
    (p,) = job.placements
    clock.now = START
    fed.job_update(a, p.placement_id, JobPhase.RUNNING, "")
    clock.now = START + 3_600  # past the early-failure window: the job fails, it is not placed again
    fed.heard(a)
    fed.job_update(a, p.placement_id, JobPhase.FAILED, "exit 1", ended_at=START + 600)
    assert (job.phase, job.finished_at) == (JobPhase.FAILED, START + 600)


def test_a_clusters_clamped_end_times_are_logged_once_while_it_lasts(caplog: pytest.LogCaptureFixture) -> None:
    """An agent with a bad clock says a wrong end at every terminal update: one WARNING when its cluster's end
    times start being clamped, DEBUG for the rest, one INFO when one is in range again; per cluster. An end not
    said (0) neither starts nor ends a spell. The metric still counts each."""
    clock = Clock()
    fed = make(MemoryStore(), clock)
    a = join(fed, "a")
    on_a = [fed.submit(spec(f"a-{i}")) for i in range(4)]  # a node each: `a` is full
    fed.schedule_once()
    b = join(fed, "b")
    on_b = [fed.submit(spec(f"b-{i}")) for i in range(2)]
    fed.schedule_once()
    assert {p.cluster for job in on_a for p in job.placements} == {"a"}
    assert {p.cluster for job in on_b for p in job.placements} == {"b"}
    clock.now = START
    for rec, job in [(a, j) for j in on_a] + [(b, j) for j in on_b]:
        fed.job_update(rec, job.placements[0].placement_id, JobPhase.RUNNING, "")
    clock.now = LEARNED
    fed.heard(a)
    fed.heard(b)
    caplog.set_level("DEBUG", logger="federator.server")

    def end(rec: ClusterRecord, job: Job, said: float) -> list[tuple[str, str]]:
        """The end-time lines a terminal update saying `said` logs."""
        caplog.clear()
        fed.job_update(rec, job.placements[0].placement_id, JobPhase.SUCCEEDED, "done", ended_at=said)
        return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "federator.server"
                and ("ended at" in r.getMessage() or "end times" in r.getMessage())]

    (first,) = end(a, on_a[0], 9_999.0)
    assert first[0] == "WARNING" and first[1].startswith("cluster a said placement ") and "(future)" in first[1]
    assert "its end times are clamped until one is in range again" in first[1]
    assert [level for level, _ in end(a, on_a[1], 9_999.0)] == ["DEBUG"]  # the same spell: not a WARNING again
    (other,) = end(b, on_b[0], 500.0)  # another cluster's spell is its own
    assert other[0] == "WARNING" and other[1].startswith("cluster b said placement ") and "(before_start)" in other[1]
    assert end(b, on_b[1], 0.0) == []  # not said: no word on b's clock
    assert end(a, on_a[2], 1_030.0) == [("INFO", "cluster a: its end times are in range again (2 clamped meanwhile)")]
    (again,) = end(a, on_a[3], 9_999.0)  # a new spell
    assert again[0] == "WARNING"
    assert clamped_count(fed, "future") == 3.0
