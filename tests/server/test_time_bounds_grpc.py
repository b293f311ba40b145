"""Every time a client sends is bounded where it is read, and a time stored past the bound stops nothing (outside
fuzz QA F1), over real gRPC sockets.

A Cordon window in milliseconds for seconds (1.8e12: year 59009), past 9999, or more than 10 years ahead is refused
INVALID_ARGUMENT naming the field, with nothing stored or audited (0.14.0 stored it, answered UNKNOWN, then failed
every scheduling cycle and every restart). A row a 0.14.0 federator stored with such a window: the federator comes
up, says so at ERROR with the fix, and every cycle runs. UsageRequest.since/until and ListJobsFilter.submitted_since
past 9999 are refused naming the field (UNKNOWN before: the refusal's own words formatted the time)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from server_support import Clock
from test_drains_grpc import Agent, until
from test_maintenance_windows_grpc import HOUR, listed, running, served, submit, why

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.model.cordon import Cordon
from federator.scheduler.maintenance_window import window_text
from federator.store.cordons import SqliteCordonStore
from federator.timestamps import LATEST, utc_exact, utc_micro, utc_seconds

from support import audit_lines

YEAR_10000 = 253402300800.0
MS_TYPO = 1.8e12  # Date.now() in milliseconds, sent as seconds: year 59009


def violations(err: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(err)
    assert status is not None, err
    detail = error_details_pb2.BadRequest()
    status.details[0].Unpack(detail)
    return {v.field: v.description for v in detail.field_violations}


@pytest.mark.parametrize(("window_from", "window_until", "field", "said"), [
    (0.0, MS_TYPO, "window_until", "a time in milliseconds? send seconds"),
    (YEAR_10000, YEAR_10000 + 100, "window_from", "must be at most 253402300799 (9999-12-31T23:59:59Z)"),
    (1e300, 1e299, "window_from", "must be at most"),
    (None, None, "window_until", "is more than 10 years after now"),  # 11 years ahead: a date, still a typo
])
def test_a_window_past_the_bound_is_refused_naming_its_field_and_nothing_is_stored(
        tmp_path: Path, window_from: float | None, window_until: float | None, field: str, said: str) -> None:
    clock = Clock()
    clock.now = time.time()
    if window_from is None or window_until is None:
        window_from, window_until = clock.now + HOUR, clock.now + 11 * 366 * 86400

    async def go() -> None:
        async with served(clock, tmp_path / "fed.db") as (fed, target), grpc.aio.insecure_channel(target) as ch:
            admin = jobs_pb2_grpc.ClusterServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.Cordon(jobs_pb2.CordonClusterRequest(
                    cluster="east-1", window_from=window_from, window_until=window_until), timeout=5)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, err.value
            assert said in violations(err.value)[field]
            assert fed.cordons.get("east-1") is None
        assert SqliteCordonStore(tmp_path / "fed.db").load() == {}
        audit = tmp_path / "audit.jsonl"
        assert all(line["result"] != "accepted" for line in (audit_lines(audit) if audit.exists() else []))

    asyncio.run(go())


def test_a_stored_window_past_9999_neither_stops_a_restart_nor_a_cycle(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The crash-loop store of F1: a cordon row a 0.14.0 federator kept with window_from in year 10000 and
    window_until in milliseconds. The restart comes up; the ERROR names the cluster, the field and the fix; the
    window reads as one never begun, so a job with no run bound is not started there and says why, every cycle."""
    db = tmp_path / "fed.db"
    SqliteCordonStore(db).put("east-1", Cordon("admin", time.time(), "firmware", window_from=YEAR_10000,
                                                window_until=MS_TYPO))
    clock = Clock()
    clock.now = time.time()

    async def go() -> None:
        with caplog.at_level(logging.ERROR, logger="federator.server"):
            async with served(clock, db) as (fed, target), grpc.aio.insecure_channel(target) as ch:
                errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
                assert any("cluster east-1: the stored cordon's window_from" in e and "federator uncordon east-1"
                           in e for e in errors), errors
                assert any("window_until" in e and "a time in milliseconds?" in e for e in errors), errors
                api, admin = jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.ClusterServiceStub(ch)

                async def body() -> None:
                    row = await listed(admin, "east-1")
                    assert (row.cordoned, row.window_from, row.window_until) == (False, LATEST, LATEST)
                    unbound = (await api.Submit(submit("unbound"), timeout=5)).job.job_id
                    await until(lambda: "east-1 has maintenance from 9999-12-31T23:59:59Z" in why(fed, unbound),
                                "the cycle runs and says why")
                    short = (await api.Submit(submit("short", 60), timeout=5)).job.job_id
                    await until(lambda: bool(fed.jobs[short].placements), "a bounded job is placed there")
                    assert not [e for e in caplog.records if "scheduling cycle failed" in e.getMessage()]
                    reply = await admin.Uncordon(jobs_pb2.UncordonClusterRequest(cluster="east-1"), timeout=5)
                    assert reply.changed  # the fix the ERROR names works
                    assert SqliteCordonStore(db).load() == {}

                await running(fed, target, [Agent("east-1", nodes=2)], body)

    asyncio.run(go())


def test_a_time_no_date_holds_is_written_not_raised() -> None:
    """The last line of defence: one stored value must not stop a cycle's reason or a log line."""
    for t in (YEAR_10000, MS_TYPO, 1e300, float("nan"), float("inf")):
        for write in (utc_seconds, utc_micro, utc_exact):
            assert "(not a date)" in write(t)
    assert utc_seconds(LATEST) == "9999-12-31T23:59:59Z"
    assert "t=1800000000000.0 (not a date)" in window_text("east-1", MS_TYPO, 0, time.time())


def test_list_and_usage_times_past_9999_are_refused_naming_the_field(tmp_path: Path) -> None:
    from federator.accounting import SqliteUsageStore
    from federator.api.v1 import usage_pb2, usage_pb2_grpc
    from federator.security.auth import Authenticator
    from federator.security.authz import Authorizer
    from federator.server.services import ClusterService
    from federator.server.usage_service import UsageService

    clock = Clock()
    clock.now = time.time()

    async def go() -> None:
        async with served(clock, tmp_path / "fed.db") as (fed, target):
            server = grpc.aio.server()
            edge = ClusterService(fed, Authenticator(insecure=True), authz=Authorizer())
            usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageService(edge, SqliteUsageStore(tmp_path / "u")),
                                                              server)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as uch, \
                        grpc.aio.insecure_channel(target) as ch:
                    usage = usage_pb2_grpc.UsageServiceStub(uch)
                    for since, until_, field in ((1e300, 1e299, "since"), (YEAR_10000, YEAR_10000 - 1, "since"),
                                                 (0.0, MS_TYPO, "until")):
                        with pytest.raises(grpc.aio.AioRpcError) as err:
                            await usage.Get(usage_pb2.UsageRequest(since=since, until=until_), timeout=5)
                        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, err.value
                        assert "must be at most 253402300799" in violations(err.value)[field]
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await jobs_pb2_grpc.JobServiceStub(ch).List(jobs_pb2.ListJobsRequest(
                            filter=jobs_pb2.ListJobsFilter(submitted_since=1e300)), timeout=5)
                    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, err.value
                    assert "must be at most" in violations(err.value)["filter.submitted_since"]
            finally:
                await server.stop(0)

    asyncio.run(go())


def test_the_cli_writes_a_window_past_9999_in_a_zone_ahead_of_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """`get clusters -o wide` / `cordon` print a window in the local zone: the clamped 9999-12-31T23:59:59Z is year
    10000 at UTC+14, which datetime cannot hold; it is written as the federator writes it, not raised."""
    from federator.cli.times import local_text

    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        assert local_text(LATEST) == "9999-12-31T23:59:59Z"
        assert local_text(MS_TYPO) == "t=1800000000000.0 (not a date)"
    finally:
        monkeypatch.undo()
        time.tzset()
