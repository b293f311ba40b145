"""Usage accounting: a scripted run on the simulated clock, read back over the real gRPC API, across a restart.

The federator is the real state machine with its real SQLite stores; the
agents' messages are scripted (connect, report, Running, Succeeded) at chosen
times of a fake clock, so every accelerator-second is known in advance.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federator.accounting import (
    Dimension,
    SqliteUsageStore,
    UsageMeter,
    UsageRecord,
    attach,
    summarize,
)
from federator.api.v1 import usage_pb2, usage_pb2_grpc
from federator.cli.usage import parse_time, render
from federator.jobfile import parse_job
from federator.metrics import Metrics
from federator.model import JobPhase, JobSpec
from federator.security.auth import Authenticator
from federator.security.authz import Authorizer, Principal, stamp_owner
from federator.server.app import provider_of
from federator.server.federator import Federator
from federator.server.services import ClusterService
from federator.server.usage_service import UsageService
from federator.store import SqliteJobStore

from builders import cluster, pool

H100, A100 = "NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-80GB"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def spec(name: str, *, gpus: int, replicas: int, queue: str, user: str, namespace: str = "default",
         model: str = H100) -> JobSpec:
    s = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                   "metadata": {"name": name, "namespace": namespace},
                   "spec": {"kind": "training", "replicas": replicas, "queue": queue, "acceleratorModels": [model],
                            "resources": {"cpu": "1", "nvidia.com/gpu": gpus}}})
    return stamp_owner(s, Principal(user))


def start(db: Path, clock: Clock) -> tuple[Federator, UsageMeter, SqliteUsageStore]:
    usage = SqliteUsageStore(db)
    metrics = Metrics()
    fed_box: list[Federator] = []
    meter = UsageMeter(usage, metrics=metrics, clock=clock,
                       provider_of=lambda c: provider_of(fed_box[0].clusters.get(c)) if fed_box else "")
    fed = Federator(store=SqliteJobStore(db), metrics=metrics, clock=clock)
    fed_box.append(fed)
    attach(fed, meter)
    return fed, meter, usage


def join(fed: Federator, name: str, model: str, provider: str, *placement_ids: str) -> None:
    rec = fed.connect(cluster=name, region="r", labels={"federator.io/provider": provider})
    fed.report(rec, replace(cluster(name, "r", pool(model, nodes=4)).capacity, placement_ids=frozenset(placement_ids)))


def running(fed: Federator, job_id: str, phase: JobPhase) -> None:
    for p in fed.jobs[job_id].placements:  # type: ignore[index]
        fed.job_update(fed.clusters[p.cluster], p.placement_id, phase, "")


async def ask(fed: Federator, usage: SqliteUsageStore, by: str = "", user: str = "admin",
              since: float = 0.0, until: float = 0.0, queue: str = "") -> usage_pb2.UsageResponse:
    """Over a real socket, as `federator usage` asks."""
    edge = ClusterService(fed, Authenticator(insecure=True), authz=Authorizer())
    server = grpc.aio.server()
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageService(edge, usage), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            return await usage_pb2_grpc.UsageServiceStub(ch).Get(
                usage_pb2.UsageRequest(since=since, until=until, by=by, queue=queue))
    finally:
        await server.stop(0)


def table(resp: usage_pb2.UsageResponse) -> dict[str, float]:
    return {r.key: r.accelerator_seconds for r in resp.rows} | {"TOTAL": resp.total.accelerator_seconds}


def test_usage_matches_a_scripted_run_exactly_and_survives_a_restart(tmp_path: Path) -> None:
    db, clock = tmp_path / "federator.db", Clock(1_000.0)
    fed, meter, usage = start(db, clock)
    join(fed, "east-1", H100, "acme")
    join(fed, "west-1", A100, "globex")
    a = fed.submit(spec("train-a", gpus=4, replicas=2, queue="research", user="alice"))
    b = fed.submit(spec("train-b", gpus=8, replicas=1, queue="serving", user="bob", namespace="team-b",
                         model=A100))
    fed.schedule_once()
    assert [p.cluster for j in (a, b) for p in fed.jobs[j.job_id].placements] == ["east-1", "west-1"]
    clock.now = 1_010.0
    running(fed, a.job_id, JobPhase.RUNNING)          # a: 2 x 4 accelerators from t=1010
    clock.now = 1_020.0
    running(fed, b.job_id, JobPhase.RUNNING)          # b: 8 accelerators from t=1020
    clock.now = 1_070.0
    running(fed, a.job_id, JobPhase.SUCCEEDED)        # a: 8 x 60 = 480
    clock.now = 1_100.0
    before = asyncio.run(ask(fed, usage, by="user"))  # b so far: 8 x 80 = 640
    assert table(before) == {"bob": 640.0, "alice": 480.0, "TOTAL": 1120.0}
    assert fed.metrics.registry.get_sample_value(
        "federator_accelerator_seconds_total",
        {"queue": "research", "cluster": "east-1", "provider": "acme", "model": H100, "region": "r",
         "vendor": "nvidia"}) == 480.0

    # the federator restarts (its process gone: a new one on the same files); b keeps running meanwhile
    fed.store.close()
    usage.close()
    clock.now = 1_200.0
    fed, meter, usage = start(db, clock)
    assert [r.job_id for r in meter.open.values()] == [b.job_id]
    join(fed, "east-1", H100, "acme")
    join(fed, "west-1", A100, "globex", fed.jobs[b.job_id].placements[0].placement_id)  # the agent re-syncs
    running(fed, b.job_id, JobPhase.RUNNING)
    clock.now = 1_320.0
    running(fed, b.job_id, JobPhase.SUCCEEDED)        # b: 8 x 300 = 2400
    clock.now = 2_000.0                               # nothing runs: usage stays
    after = asyncio.run(ask(fed, usage, by="user"))
    assert table(after) == {"bob": 2400.0, "alice": 480.0, "TOTAL": 2880.0}
    assert table(asyncio.run(ask(fed, usage, by="cluster"))) == {"west-1": 2400.0, "east-1": 480.0, "TOTAL": 2880.0}
    assert table(asyncio.run(ask(fed, usage, by="provider"))) == {"globex": 2400.0, "acme": 480.0, "TOTAL": 2880.0}
    assert table(asyncio.run(ask(fed, usage, by="model"))) == {A100: 2400.0, H100: 480.0, "TOTAL": 2880.0}
    assert table(asyncio.run(ask(fed, usage, by="namespace"))) == {"team-b": 2400.0, "default": 480.0, "TOTAL": 2880.0}
    assert table(asyncio.run(ask(fed, usage, by="queue"))) == {"serving": 2400.0, "research": 480.0, "TOTAL": 2880.0}
    # a window: [1050, 1100) holds a's last 20 s (8 x 20) and b's 50 s (8 x 50)
    assert table(asyncio.run(ask(fed, usage, since=1_050.0, until=1_100.0))) == {"TOTAL": 560.0}  # no row: F4
    assert "TOTAL" in render(after, output="table", by="user")
    assert json.loads(render(after, output="json", by="user"))["total"]["acceleratorSeconds"] == 2880.0
    assert render(after, output="csv", by="user").splitlines()[-1] == "TOTAL,2880.000000,0.800000,2,2880000000"


def running_job(db: Path, clock: Clock) -> tuple[Federator, UsageMeter, SqliteUsageStore, str]:
    """A federator with one member and one job of 2 H100, placed at 0 and running from 10 (clock at 10)."""
    clock.now = 0.0
    fed, meter, usage = start(db, clock)
    join(fed, "east-1", H100, "acme")
    job = fed.submit(spec("j", gpus=2, replicas=1, queue="q", user="u"))
    fed.schedule_once()
    clock.now = 10.0
    running(fed, job.job_id, JobPhase.RUNNING)
    return fed, meter, usage, job.job_id


def test_a_preempted_or_replaced_placement_stops_counting(tmp_path: Path) -> None:
    clock = Clock(0.0)
    fed, meter, usage, job_id = running_job(tmp_path / "db", clock)
    clock.now = 25.0
    rec = fed.clusters["east-1"]
    fed.refused(rec, fed.jobs[job_id].placements[0].placement_id, "evicted")  # back to Pending
    clock.now = 100.0
    assert meter.open == {}
    assert summarize(usage.query(since=0, until=100), since=0, until=100, now=100).total.accelerator_seconds == 30.0


def test_times_parse_as_iso_unix_or_an_age(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")  # a bare date is local midnight (cli/times.py: tests/cli/test_times.py)
    time.tzset()
    assert parse_time("2026-11-30", flag="--since", now=0) == 1795996800.0
    assert parse_time("2026-11-30T01:00:00+01:00", flag="--since", now=0) == 1795996800.0
    assert parse_time("7d", flag="--since", now=1_000_000) == 1_000_000 - 7 * 86400
    assert parse_time("1500", flag="--since", now=0) == 1500.0
    with pytest.raises(ValueError, match="--until: expected an ISO 8601 date or time"):
        parse_time("yesterday", flag="--until", now=0)


def test_a_window_that_ends_before_it_starts_is_refused_in_dates(tmp_path: Path) -> None:
    """Outside QA HPC H7: "until: must be after since (1796567278 <= 1796601600)" to a user who typed dates."""
    fed, _meter, usage = start(tmp_path / "fed.db", Clock(2_000.0))
    with pytest.raises(grpc.RpcError) as refused:
        asyncio.run(ask(fed, usage, since=1_796_601_600.0, until=1_796_567_278.0))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == ("until: must be after since (2026-12-06T14:27:58Z is not after "
                                       "2026-12-07T00:00:00Z)")


def test_a_report_from_the_first_record_says_so_in_every_output() -> None:
    """No --since: the table says "the first record" and JSON says null, not the Unix epoch."""
    resp = usage_pb2.UsageResponse(since=0, until=1_764_751_482)
    assert render(resp, output="table", by="").startswith("usage from the first record to 2025-12-03T08:44:42Z")
    doc = json.loads(render(resp, output="json", by=""))
    assert doc["since"] is None and doc["until"] == "2025-12-03T08:44:42Z"
    bounded = usage_pb2.UsageResponse(since=1_764_751_482, until=1_764_751_483)
    assert json.loads(render(bounded, output="json", by=""))["since"] == "2025-12-03T08:44:42Z"


records = st.lists(st.builds(
    UsageRecord, placement_id=st.uuids().map(str), job_id=st.sampled_from(["j1", "j2", "j3"]),
    queue=st.sampled_from(["q1", "q2"]), user=st.sampled_from(["alice", "bob", ""]),
    namespace=st.sampled_from(["a", "b"]), cluster=st.sampled_from(["c1", "c2", "c3"]),
    provider=st.sampled_from(["p1", "p2", ""]), model=st.sampled_from([H100, A100]),
    accelerators_milli=st.integers(1, 64_000), start=st.floats(0, 1e6),
    end=st.one_of(st.none(), st.floats(0, 2e6))), max_size=40)


@settings(max_examples=200, deadline=None)
@given(records=records, since=st.floats(0, 1e6), span=st.floats(0.001, 2e6), now=st.floats(0, 3e6))
def test_the_sum_over_any_grouping_is_the_total(records: list[UsageRecord], since: float, span: float,
                                                now: float) -> None:
    records = [replace(r, end=None if r.end is None else max(r.end, r.start)) for r in records]
    until = since + span
    total = summarize(records, since=since, until=until, now=now).total
    for by in Dimension:
        report = summarize(records, since=since, until=until, now=now, by=by)
        assert sum(r.micro for r in report.rows) == total.micro == report.total.micro
        assert sum(r.placements for r in report.rows) == total.placements
        assert len({r.key for r in report.rows}) == len(report.rows)


def test_a_placements_end_the_disk_refuses_is_stored_once_it_has_room(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The record that closed a placement was logged with a traceback and dropped on a full disk, so the store
    kept it open: after a restart it read as running until then, and was billed for the federator's downtime."""
    import logging
    import sqlite3

    clock = Clock(0.0)
    fed, meter, usage, job_id = running_job(tmp_path / "db", clock)
    put = usage.put

    def full(records: list[UsageRecord]) -> None:
        if records:
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(usage, "put", full)
    clock.now = 40.0
    with caplog.at_level(logging.WARNING, logger="federator.accounting"):
        running(fed, job_id, JobPhase.SUCCEEDED)
        meter.tick()
        meter.tick()
    said = [r for r in caplog.records if r.name == "federator.accounting"]
    assert len(said) == 1 and said[0].exc_info is None, [r.getMessage() for r in said]  # one line per outage
    assert "kept, and written once the store takes writes" in said[0].getMessage()
    monkeypatch.setattr(usage, "put", put)
    clock.now = 50.0
    meter.tick()
    assert usage.open_records() == []
    assert summarize(usage.query(since=0, until=100), since=0, until=100, now=100).total.accelerator_seconds == 60.0


def counted(fed: Federator) -> float:
    return sum(s.value for f in fed.metrics.registry.collect() if f.name == "federator_accelerator_seconds"
               for s in f.samples if s.name.endswith("_total"))


def test_the_counter_does_not_count_a_federator_pause_past_an_end_heard_after_it(tmp_path: Path) -> None:
    """Outside billing QA F1: a 120 accelerator-second job counted 278.6 in federator_accelerator_seconds_total after
    a 30 s SIGSTOP of the federator: the first tick after the pause counted it up to then, before the end (with its
    ended_at) came in from the agent's backlog, and a counter never goes back. Ticks wait after a pause; a job still
    running after the hold is counted through it."""
    db, clock = tmp_path / "federator.db", Clock(1_000.0)
    fed, meter, usage = start(db, clock)
    join(fed, "east-1", H100, "acme")
    done = fed.submit(spec("done", gpus=8, replicas=1, queue="q", user="alice"))
    going = fed.submit(spec("going", gpus=4, replicas=1, queue="q", user="alice"))
    fed.schedule_once()
    running(fed, done.job_id, JobPhase.RUNNING)
    running(fed, going.job_id, JobPhase.RUNNING)  # 12 accelerators from t=1000
    for t in (1_005.0, 1_010.0):
        clock.now = t
        meter.tick()
    assert counted(fed) == 120.0  # 12 x 10 s
    clock.now = 1_045.0  # paused at 1010 for 35 s; `done` ended at 1015 meanwhile
    meter.tick()
    assert counted(fed) == 120.0  # held: the pause is not counted yet
    [p] = fed.jobs[done.job_id].placements  # type: ignore[index]
    fed.job_update(fed.clusters["east-1"], p.placement_id, JobPhase.SUCCEEDED, "", ended_at=1_015.0)
    assert counted(fed) == 120.0 + 8 * 5  # done: to its end, 15 s in all
    for t in range(1_050, 1_175, 5):  # the hold (120 s here, serve's --lost-after) ends at 1165
        clock.now = float(t)
        meter.tick()
        if t < 1_165:
            assert counted(fed) == 160.0, t
    assert counted(fed) == 160.0 + 4 * 160  # going: counted through the pause once the hold is over
    assert summarize(usage.query(since=0, until=2_000), since=0, until=2_000, now=1_170).total.accelerator_seconds \
        == 8 * 15 + 4 * 170  # the records agree


def test_a_record_closed_before_a_crash_lost_its_jobs_write_stays_closed(tmp_path: Path) -> None:
    """The meter writes a placement's closed record before the job write that shows it ended (group commit writes
    jobs a moment later). A crash between the two left the job store saying Running: the restarted meter opened a
    new record under the same id, which replaced the closed one (INSERT OR REPLACE on the key), so what it billed
    was lost and the placement was billed again from the restart (billing helper's find). Its record is reopened
    from its own start; the agent's re-sync closes it at its end."""
    db, clock = tmp_path / "db", Clock(0.0)
    fed, meter, usage, job_id = running_job(db, clock)  # 2 H100 running from 10
    [p] = fed.jobs[job_id].placements
    [opened] = meter.open.values()
    usage.put([replace(opened, end=40.0)])  # the meter closed it at 40; the job's write never landed
    fed.store.close()
    usage.close()
    clock.now = 300.0
    fed, meter, usage = start(db, clock)
    assert fed.jobs[job_id].placements[0].phase is JobPhase.RUNNING  # as the job store kept it
    assert [(r.placement_id, r.start, r.end) for r in meter.open.values()] == [(p.placement_id, 10.0, None)]
    join(fed, "east-1", H100, "acme", p.placement_id)
    clock.now = 400.0
    fed.job_update(fed.clusters["east-1"], p.placement_id, JobPhase.SUCCEEDED, "", ended_at=40.0)  # the re-sync
    assert meter.open == {}
    [kept] = usage.query(since=0, until=1_000)
    assert (kept.placement_id, kept.start, kept.end) == (p.placement_id, 10.0, 40.0)
    assert summarize(usage.query(since=0, until=1_000), since=0, until=1_000, now=400).total.accelerator_seconds \
        == 60.0  # 2 x 30 s, not 2 x 100 from the restart


def test_an_agents_updates_on_the_event_loop_are_metered_though_their_writes_leave_it(tmp_path: Path) -> None:
    """An agent's update on the loop is queued off it (`GroupCommit.write_or_owe`); the meter hooked `write` alone, so
    with the update no longer written through `write` a served federator metered nothing (`federator usage` read 0
    for a job that ran: tests/accounting/test_usage_processes.py). The meter sees every state handed to the journal."""
    db, clock = tmp_path / "federator.db", Clock(1_000.0)
    fed, meter, usage = start(db, clock)
    join(fed, "east-1", H100, "acme")
    a = fed.submit(spec("train-a", gpus=4, replicas=2, queue="research", user="alice"))
    fed.schedule_once()

    async def scenario() -> usage_pb2.UsageResponse:
        running(fed, a.job_id, JobPhase.RUNNING)  # 2 x 4 accelerators from t=1000
        clock.now = 1_030.0
        running(fed, a.job_id, JobPhase.SUCCEEDED)  # 8 x 30 = 240
        await asyncio.to_thread(fed.journal.drain)
        return await ask(fed, usage, by="user")

    assert table(asyncio.run(scenario())) == {"alice": 240.0, "TOTAL": 240.0}
    fed.store.close()
    store = SqliteJobStore(db)
    assert {j.phase for j in store.load()} == {JobPhase.SUCCEEDED}  # and stored, off the loop
    store.close()
