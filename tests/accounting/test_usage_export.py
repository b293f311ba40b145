"""What `federator usage` exports is the bill: its window, its rows and its columns must be the ones counted.

Outside billing QA: F4 (`by: ""` answered a row repeating the total), F5 (the window printed to the second while
counted to the fraction; an `until` in the future printed as if the window were over), F8 (the hours column,
each row rounded alone, did not add up to its TOTAL), F6 (no line per job to reconcile a bill with).
"""

from __future__ import annotations

import asyncio
import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_usage import Clock, ask, join, running, spec, start

from federator.accounting import Dimension, UsageRecord, summarize
from federator.api.v1 import types_pb2, usage_pb2
from federator.cli import build_parser
from federator.cli.usage import render, shares
from federator.model import JobPhase
from federator.security.auth import Peer
from federator.security.authz import Authorizer, tenancy_from_document
from federator.server.retention import forget_job
from federator.server.usage_service import visible_records

H100 = "NVIDIA-H100-80GB-HBM3"


def vouch(fed: object, at: float, clock: Clock) -> None:
    """east-1's agent reports at `at`, listing what runs there: it vouches for its placements up to then."""
    clock.now = at
    pids = [p.placement_id for j in fed.jobs.values() for p in j.placements]  # type: ignore[attr-defined]
    join(fed, "east-1", H100, "acme", *pids)  # type: ignore[arg-type]


def one_job(tmp_path: Path) -> tuple[object, object, Clock]:
    """One 8-accelerator job running from t=1000 (clock at 1000)."""
    clock = Clock(1_000.0)
    fed, _meter, usage = start(tmp_path / "federator.db", clock)
    join(fed, "east-1", H100, "acme")
    job = fed.submit(spec("train", gpus=8, replicas=1, queue="research", user="alice"))
    fed.schedule_once()
    running(fed, job.job_id, JobPhase.RUNNING)
    return fed, usage, clock


def test_the_total_only_has_no_rows_on_the_wire(tmp_path: Path) -> None:
    fed, usage, clock = one_job(tmp_path)
    clock.now = 1_005.0
    resp = asyncio.run(ask(fed, usage))  # type: ignore[arg-type]
    assert list(resp.rows) == [] and resp.by == ""
    assert resp.total.micro_accelerator_seconds == 40_000_000 and resp.total.placements == 1
    doc = json.loads(render(resp, output="json", by=""))
    assert doc["by"] == "" and doc["rows"] == []  # was "by": null, as nothing else in the export is


def test_the_exported_window_is_the_window_counted_to_the_fraction_of_a_second(tmp_path: Path) -> None:
    fed, usage, clock = one_job(tmp_path)
    vouch(fed, 1_796_519_878.0, clock)  # long after: the job still runs; a 66 s window with half seconds at both ends
    resp = asyncio.run(ask(fed, usage, since=1_796_519_800.5, until=1_796_519_866.5))  # type: ignore[arg-type]
    assert (resp.since, resp.until, resp.incomplete) == (1_796_519_800.5, 1_796_519_866.5, False)
    assert resp.total.micro_accelerator_seconds == 8 * 66_000_000
    doc = json.loads(render(resp, output="json", by=""))
    assert (doc["since"], doc["until"], doc["incomplete"]) == \
        ("2026-12-06T01:16:40.5Z", "2026-12-06T01:17:46.5Z", False)
    assert "note" not in doc
    assert render(resp, output="table", by="").splitlines()[0] == \
        "usage from 2026-12-06T01:16:40.5Z to 2026-12-06T01:17:46.5Z"
    assert not render(resp, output="csv", by="").startswith("#")


def test_an_until_after_the_call_is_answered_as_the_time_of_the_call_and_said_incomplete(tmp_path: Path) -> None:
    fed, usage, clock = one_job(tmp_path)
    vouch(fed, 1_010.0, clock)
    early = asyncio.run(ask(fed, usage, since=1_000.0, until=4_600.0))  # type: ignore[arg-type]
    assert (early.until, early.incomplete, early.total.accelerator_seconds) == (1_010.0, True, 80.0)
    vouch(fed, 1_020.0, clock)  # the same request later answers more: what "incomplete" warns of
    assert asyncio.run(ask(fed, usage, since=1_000.0, until=4_600.0)).total.accelerator_seconds == 160.0  # type: ignore[arg-type]
    now = asyncio.run(ask(fed, usage, since=1_000.0))  # type: ignore[arg-type]  # until 0: "now", a window that is over
    assert (now.until, now.incomplete) == (1_020.0, False)
    ahead = asyncio.run(ask(fed, usage, since=2_000.0, until=3_000.0))  # type: ignore[arg-type]  # not begun yet
    assert (ahead.since, ahead.until, ahead.incomplete, ahead.total.micro_accelerator_seconds) == \
        (2_000.0, 2_000.0, True, 0)

    doc = json.loads(render(early, output="json", by=""))
    assert doc["until"] == "1970-01-01T00:16:50Z" and doc["incomplete"] is True
    assert "incomplete: counted up to 1970-01-01T00:16:50Z, and not final" in doc["note"]
    lines = render(early, output="csv", by="").splitlines()
    assert lines[0].startswith("# incomplete: ") and lines[1].startswith("total,")
    assert "(incomplete: " in render(early, output="table", by="").splitlines()[0]


def response(micros: list[int]) -> usage_pb2.UsageResponse:
    rows = [usage_pb2.UsageRow(key=f"org-{i:03d}", accelerator_seconds=m / 1e6, micro_accelerator_seconds=m,
                               placements=1) for i, m in enumerate(micros)]
    total = usage_pb2.UsageRow(accelerator_seconds=sum(micros) / 1e6, micro_accelerator_seconds=sum(micros),
                               placements=len(micros))
    return usage_pb2.UsageResponse(since=1.0, until=2.0, by="queue", rows=rows, total=total)


def test_every_csv_column_adds_up_to_its_total_and_the_exact_amount_is_a_column() -> None:
    """QA's store: 263 one-org rows of about 2 s summed to 4.296789 h against a TOTAL of 4.296769 h."""
    micros = [2_000_000 + 37_000 * (i % 7) for i in range(263)]
    table = list(csv.DictReader(render(response(micros), output="csv", by="queue").splitlines()))
    body, total = table[:-1], table[-1]
    assert total["queue"] == "TOTAL"
    for column in ("accelerator_seconds", "accelerator_hours", "micro_accelerator_seconds", "placements"):
        assert sum(Decimal(r[column]) for r in body) == Decimal(total[column]), column
    assert [int(r["micro_accelerator_seconds"]) for r in body] == micros
    assert Decimal(total["accelerator_hours"]) == round(Decimal(sum(micros)) / 3_600_000_000, 6)
    doc = json.loads(render(response(micros), output="json", by="queue"))
    assert round(sum(Decimal(str(r["acceleratorHours"])) for r in doc["rows"]), 6) == \
        Decimal(str(doc["total"]["acceleratorHours"]))
    shown = render(response(micros), output="table", by="queue").splitlines()[2:]
    hours = [Decimal(line.split()[2].replace(",", "")) for line in shown]
    assert sum(hours[:-1]) == hours[-1]


@settings(max_examples=300, deadline=None)
@given(amounts=st.lists(st.integers(0, 10**12), max_size=60), unit=st.sampled_from([3_600, 100_000, 3_600_000]))
def test_apportioned_rows_add_up_and_each_is_within_one_unit_of_its_amount(amounts: list[int], unit: int) -> None:
    rows, total = shares(amounts, total=sum(amounts), unit=unit)
    assert sum(rows) == total == (sum(amounts) + unit // 2) // unit
    assert all(abs(r * unit - a) < unit for r, a in zip(rows, amounts, strict=True))


def test_usage_by_job_gives_a_line_per_job_over_the_wire(tmp_path: Path) -> None:
    clock = Clock(1_000.0)
    fed, _meter, usage = start(tmp_path / "federator.db", clock)
    join(fed, "east-1", H100, "acme")
    a = fed.submit(spec("a", gpus=2, replicas=1, queue="org-a", user="alice"))
    b = fed.submit(spec("b", gpus=4, replicas=1, queue="org-a", user="alice"))
    fed.schedule_once()
    for j in (a, b):
        running(fed, j.job_id, JobPhase.RUNNING)
    vouch(fed, 1_010.0, clock)
    resp = asyncio.run(ask(fed, usage, by="job"))
    assert [(r.key, r.accelerator_seconds) for r in resp.rows] == [(b.job_id, 40.0), (a.job_id, 20.0)]
    assert render(resp, output="csv", by="job").splitlines()[0].startswith("job,")
    assert build_parser().parse_args(["usage", "--by", "job"]).by == ["job"]


def test_by_job_shows_a_caller_the_jobs_of_the_usage_it_may_see_and_no_other() -> None:
    authz = Authorizer(tenancy_from_document({"tenancy": {"groups": {"org-a": {"users": ["alice", "amir"],
                                                                                "jobs": "view"}}}}))
    records = [UsageRecord(f"{job}.g1.c", job, "q", user, "default", "c", "p", H100, 1000, 0.0, 10.0)
               for job, user in (("a1", "alice"), ("a2", "amir"), ("b1", "bob"))]
    for user, jobs in (("alice", ["a1", "a2"]), ("bob", ["b1"]), ("carol", [])):
        seen = visible_records(authz, authz.principal(Peer(None, "token", name=user)), records, {})
        report = summarize(seen, since=0, until=10, now=10, by=Dimension.JOB)
        assert sorted(r.key for r in report.rows) == jobs, user


@pytest.mark.parametrize("by", [d.value for d in Dimension])
def test_the_cli_offers_every_dimension_the_api_groups_by(by: str) -> None:
    assert build_parser().parse_args(["usage", "--by", by]).by == [by]


@settings(max_examples=300, deadline=None)
@given(start=st.floats(0, 1e6), length=st.floats(0.0001, 1e5), cut=st.floats(0, 1), milli=st.integers(1, 64_000))
@example(start=31982.0, length=33554.0005, cut=0.0, milli=1)  # start + length - start is not length in floats
def test_two_halves_of_a_window_add_up_to_the_whole(start: float, length: float, cut: float, milli: int) -> None:
    """Outside billing re-test N2: a 4 x 8 gang's window split in two lost 32,000 micro-units, each half's length
    rounded to the millisecond on its own. Counted from the record's start at both edges, halves add up exactly."""
    rec = UsageRecord("p", "j", "q", "u", "ns", "c", "acme", H100, milli, start, start + length)
    a, c = start - 1.0, start + length + 1.0
    b = start + cut * length
    whole = rec.micro_seconds(since=a, until=c, now=c)
    assert rec.micro_seconds(since=a, until=b, now=c) + rec.micro_seconds(since=b, until=c, now=c) == whole
    assert whole == milli * round((rec.end - rec.start) * 1000)  # the record's own length, as floats hold it


def test_a_past_window_is_incomplete_while_a_placement_in_it_runs_on_a_member_not_heard_from(tmp_path: Path) -> None:
    """Outside billing re-test N3: a past window read while an agent was dead said 80.0 and complete; once its member
    was Lost (its placement ending at its last report), the same window said 59.656. Until the member vouches for
    its placements past the window's end, the answer says it is not final."""
    fed, usage, clock = one_job(tmp_path)  # running from 1000, its member's last report at 1000
    clock.now = 1_100.0  # the agent is silent since
    past = asyncio.run(ask(fed, usage, since=1_000.0, until=1_050.0))  # type: ignore[arg-type]
    assert (past.total.accelerator_seconds, past.incomplete) == (400.0, True)
    vouch(fed, 1_100.0, clock)  # it reports again, listing the placement: it ran through the window
    past = asyncio.run(ask(fed, usage, since=1_000.0, until=1_050.0))  # type: ignore[arg-type]
    assert (past.total.accelerator_seconds, past.incomplete) == (400.0, False)


def test_usage_by_placement_says_each_time_a_job_was_placed_where_it_ran_after_its_record_forgot_it() -> None:
    """Outside compliance QA C3: a job re-queued off west-1 ran again on east-1; `get job` shows only the second
    placement, `usage --by job --by placement --by region` both, each with its own accelerator-seconds."""
    records = [UsageRecord("train-1a.g1.west-1", "train-1a", "q", "alice", "default", "west-1", "p", H100, 8000,
                           0.0, 10.0, region="west"),
               UsageRecord("train-1a.g2.east-1", "train-1a", "q", "alice", "default", "east-1", "p", H100, 8000,
                           12.0, 17.0, region="east")]
    report = summarize(records, since=0, until=20, now=20,
                       by=(Dimension.JOB, Dimension.PLACEMENT, Dimension.REGION))
    assert [(r.keys, r.micro) for r in report.rows] == [
        (("train-1a", "train-1a.g1.west-1", "west"), 80_000_000),
        (("train-1a", "train-1a.g2.east-1", "east"), 40_000_000)]


def test_by_job_each_row_says_the_jobs_phase_now_or_that_it_is_no_longer_known(tmp_path: Path) -> None:
    """Outside QA HPC (stop 56): a user reconciling their month could not tell which rows succeeded, failed, were
    cancelled or still ran. Usage records keep no phase: each row is joined to the job the federator keeps now,
    and one removed since (retention) is unknown: `-` in the table and CSV, null in JSON."""
    clock = Clock(1_000.0)
    fed, _meter, usage = start(tmp_path / "federator.db", clock)
    join(fed, "east-1", H100, "acme")
    jobs = {name: fed.submit(spec(name, gpus=gpus, replicas=1, queue="org-a", user="alice"))
            for name, gpus in (("ok", 1), ("bad", 2), ("stopped", 3), ("gone", 4), ("runs", 5))}
    fed.schedule_once()
    for j in jobs.values():
        running(fed, j.job_id, JobPhase.RUNNING)
    vouch(fed, 1_400.0, clock)  # past --early-failure-seconds: a failure is the job's end, not a retry
    running(fed, jobs["ok"].job_id, JobPhase.SUCCEEDED)
    running(fed, jobs["bad"].job_id, JobPhase.FAILED)
    running(fed, jobs["gone"].job_id, JobPhase.SUCCEEDED)
    fed.cancel(jobs["stopped"].job_id)
    forget_job(fed, fed.jobs[jobs["gone"].job_id])  # as retention removes a finished job
    resp = asyncio.run(ask(fed, usage, by="job"))
    by_name = {r.key.rsplit("-", 1)[0]: r.phase for r in resp.rows}
    assert by_name == {"ok": types_pb2.JOB_PHASE_SUCCEEDED, "bad": types_pb2.JOB_PHASE_FAILED,
                       "stopped": types_pb2.JOB_PHASE_CANCELLED, "gone": types_pb2.JOB_PHASE_UNSPECIFIED,
                       "runs": types_pb2.JOB_PHASE_RUNNING}
    assert resp.total.phase == types_pb2.JOB_PHASE_UNSPECIFIED
    assert all(r.phase == types_pb2.JOB_PHASE_UNSPECIFIED for r in asyncio.run(ask(fed, usage, by="queue")).rows)

    shown = render(resp, output="table", by="job").splitlines()
    assert shown[1].split()[:2] == ["JOB", "PHASE"]
    assert [line.split()[1] for line in shown[2:-1]] == ["Running", "-", "Cancelled", "Failed", "Succeeded"]
    assert shown[-1].split()[0] == "TOTAL"
    rows = list(csv.DictReader(render(resp, output="csv", by="job").splitlines()))
    assert [r["phase"] for r in rows] == ["Running", "-", "Cancelled", "Failed", "Succeeded", ""]
    doc = json.loads(render(resp, output="json", by="job"))
    assert [r["phase"] for r in doc["rows"]] == ["Running", None, "Cancelled", "Failed", "Succeeded"]
    assert "phase" not in json.loads(render(asyncio.run(ask(fed, usage, by="queue")), output="json",
                                            by="queue"))["rows"][0]
