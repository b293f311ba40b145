"""Usage by region and vendor, and by several dimensions at once (capacity planners QA P9).

Planners budget by province, by vendor and by provider x model: `--by region` was an invalid choice, one `--by` at
a time, and the accelerator-seconds counter had no region or vendor (a join on `cluster`, which a forgotten
cluster's usage lost). A record keeps the region its cluster had when the accelerators were used, so a cluster
moved since keeps its past usage's region; a store written before 0.14.0 upgrades in place and its records answer
with the cluster's region as known now; a rolled-back 0.13.0 still writes its records into a 0.14.0 file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from federator.accounting import SqliteUsageStore, UsageMeter, UsageRecord, attach, store
from federator.api.v1 import usage_pb2, usage_pb2_grpc
from federator.cli import build_parser
from federator.cli.usage import older_server, render
from federator.jobfile import parse_job
from federator.metrics import Metrics
from federator.model import JobPhase, JobSpec
from federator.security.auth import Authenticator
from federator.security.authz import Authorizer, Principal, stamp_owner
from federator.server.app import provider_of
from federator.server.federator import Federator
from federator.server.services import ClusterService
from federator.server.usage_service import UsageService, region_now, vendor_now
from federator.store import SqliteJobStore

from builders import cluster, pool

H100, ASCEND = "NVIDIA-H100-80GB-HBM3", "Ascend910B3"

# The usage table exactly as 0.13.0 made it, and its insert, which names no columns (accounting/store.py, main).
OLD_TABLE = ("CREATE TABLE usage (placement_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, queue TEXT NOT NULL, "
             "user TEXT NOT NULL, namespace TEXT NOT NULL, cluster TEXT NOT NULL, provider TEXT NOT NULL, "
             "model TEXT NOT NULL, accelerators_milli INTEGER NOT NULL, start REAL NOT NULL, end_time REAL)")
OLD_INSERT = "INSERT OR REPLACE INTO usage VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def spec(name: str, accelerators: list[dict[str, object]], queue: str = "research") -> JobSpec:
    s = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                   "spec": {"kind": "training", "replicas": 1, "queue": queue, "resources": {"cpu": "1"},
                            "accelerators": accelerators}})
    return stamp_owner(s, Principal("alice"))


def start(db: Path, clock: Clock) -> tuple[Federator, SqliteUsageStore]:
    """A federator metered as `federator serve` wires it (server/app.py)."""
    usage = SqliteUsageStore(db)
    metrics = Metrics()
    fed = Federator(store=SqliteJobStore(db), metrics=metrics, clock=clock)
    meter = UsageMeter(usage, metrics=metrics, clock=clock, provider_of=lambda c: provider_of(fed.clusters.get(c)),
                       region_of=region_now(fed.clusters), vendor_of=vendor_now(fed.clusters))
    attach(fed, meter)
    return fed, usage


def join(fed: Federator, name: str, region: str, provider: str) -> None:
    """gd-nv: H100s of nvidia; gz-asc: Ascend 910B of huawei."""
    nv = cluster(name, region, pool(H100, nodes=2)).capacity
    hw = replace(pool(ASCEND, nodes=2, free=16, gpus_per_node=16), vendor="huawei", family="Ascend910B")
    rec = fed.connect(cluster=name, region=region, labels={"federator.io/provider": provider})
    fed.report(rec, replace(nv, accelerator_pools=(hw,) if "asc" in name else nv.accelerator_pools))


def running(fed: Federator, job_id: str, phase: JobPhase) -> None:
    for p in fed.jobs[job_id].placements:  # type: ignore[index]
        fed.job_update(fed.clusters[p.cluster], p.placement_id, phase, "")


async def ask(fed: Federator, usage: SqliteUsageStore, **asked: object) -> usage_pb2.UsageResponse:
    """Over a real socket, as `federator usage` asks."""
    edge = ClusterService(fed, Authenticator(insecure=True), authz=Authorizer())
    server = grpc.aio.server()
    usage_pb2_grpc.add_UsageServiceServicer_to_server(UsageService(edge, usage), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            return await usage_pb2_grpc.UsageServiceStub(ch).Get(usage_pb2.UsageRequest(**asked))  # type: ignore[arg-type]
    finally:
        await server.stop(0)


def table(resp: usage_pb2.UsageResponse) -> dict[tuple[str, ...], float]:
    return {tuple(r.keys): r.accelerator_seconds for r in resp.rows} | {("TOTAL",): resp.total.accelerator_seconds}


def scripted(tmp_path: Path) -> tuple[Federator, SqliteUsageStore, Clock]:
    """8 H100 x 100 s in guangdong (provA) and 16 Ascend x 50 s in guizhou (provB), both ended by t=1100."""
    clock = Clock(1_000.0)
    fed, usage = start(tmp_path / "federator.db", clock)
    join(fed, "gd-nv", "guangdong", "provA")
    join(fed, "gz-asc", "guizhou", "provB")
    nv = fed.submit(spec("nv", [{"model": "H100", "count": 8}]))
    hw = fed.submit(spec("hw", [{"model": "Ascend910B", "count": 16}], queue="prod"))
    fed.schedule_once()
    assert {p.cluster for j in (nv, hw) for p in fed.jobs[j.job_id].placements} == {"gd-nv", "gz-asc"}
    running(fed, nv.job_id, JobPhase.RUNNING)
    running(fed, hw.job_id, JobPhase.RUNNING)
    clock.now = 1_050.0
    running(fed, hw.job_id, JobPhase.SUCCEEDED)
    clock.now = 1_100.0
    running(fed, nv.job_id, JobPhase.SUCCEEDED)
    return fed, usage, clock


def test_usage_by_region_vendor_and_combinations_over_the_wire_and_in_the_counter(tmp_path: Path) -> None:
    fed, usage, _clock = scripted(tmp_path)
    assert table(asyncio.run(ask(fed, usage, by="region"))) == {
        ("guangdong",): 800.0, ("guizhou",): 800.0, ("TOTAL",): 1600.0}
    assert table(asyncio.run(ask(fed, usage, by="vendor"))) == {
        ("huawei",): 800.0, ("nvidia",): 800.0, ("TOTAL",): 1600.0}
    both = asyncio.run(ask(fed, usage, group_by=["provider", "model"]))
    assert list(both.group_by) == ["provider", "model"] and both.by == ""
    assert table(both) == {("provA", H100): 800.0, ("provB", ASCEND): 800.0, ("TOTAL",): 1600.0}
    assert [r.key for r in both.rows] == [f"provA / {H100}", f"provB / {ASCEND}"]
    assert sum(r.micro_accelerator_seconds for r in both.rows) == both.total.micro_accelerator_seconds
    # one dimension in group_by answers as `by` of it
    assert table(asyncio.run(ask(fed, usage, group_by=["region"]))) == table(asyncio.run(ask(fed, usage, by="region")))
    # Prometheus sums by province or vendor with no join on cluster
    get = fed.metrics.registry.get_sample_value
    assert get("federator_accelerator_seconds_total", {"queue": "prod", "cluster": "gz-asc", "provider": "provB",
                                                       "model": ASCEND, "region": "guizhou",
                                                       "vendor": "huawei"}) == 800.0
    assert get("federator_accelerator_seconds_total", {"queue": "research", "cluster": "gd-nv", "provider": "provA",
                                                       "model": H100, "region": "guangdong",
                                                       "vendor": "nvidia"}) == 800.0
    fed.store.close()
    usage.close()


def test_a_cluster_moved_to_another_region_keeps_its_past_usage_in_the_region_it_was_used_in(tmp_path: Path) -> None:
    fed, usage, clock = scripted(tmp_path)
    join(fed, "gz-asc", "sichuan", "provB")  # its agent comes back with another --region
    later = fed.submit(spec("later", [{"model": "Ascend910B", "count": 16}]))
    fed.schedule_once()
    running(fed, later.job_id, JobPhase.RUNNING)
    clock.now = 1_110.0
    running(fed, later.job_id, JobPhase.SUCCEEDED)
    assert table(asyncio.run(ask(fed, usage, by="region"))) == {
        ("guangdong",): 800.0, ("guizhou",): 800.0, ("sichuan",): 160.0, ("TOTAL",): 1760.0}
    # and a restart reads the regions back from the store
    fed.store.close()
    usage.close()
    fed, usage = start(tmp_path / "federator.db", clock)
    assert table(asyncio.run(ask(fed, usage, by="region"))) == {
        ("guangdong",): 800.0, ("guizhou",): 800.0, ("sichuan",): 160.0, ("TOTAL",): 1760.0}
    fed.store.close()
    usage.close()


def test_a_store_of_0_13_upgrades_in_place_and_a_rolled_back_0_13_still_writes_to_it(tmp_path: Path) -> None:
    db = tmp_path / "federator.db"
    old = sqlite3.connect(db)
    old.execute(OLD_TABLE)
    old.execute(OLD_INSERT, ("a.g1.gd-nv", "a", "research", "alice", "default", "gd-nv", "provA", H100, 8_000,
                             1_000.0, 1_010.0))
    old.execute(OLD_INSERT, ("b.g1.gone", "b", "research", "alice", "default", "gone", "", "MysteryChip", 1_000,
                             1_000.0, 1_010.0))
    old.commit()
    old.close()
    clock = Clock(1_100.0)
    fed, usage = start(db, clock)
    records = {r.placement_id: r for r in usage.query(since=0, until=2_000, places=True)}
    assert [(r.region, r.vendor) for r in records.values()] == [("", ""), ("", "")]  # nothing invented in the store
    join(fed, "gd-nv", "guangdong", "provA")
    # an old record: its cluster's region and its model's vendor as known now; a cluster gone, and a model the
    # catalog does not know: "" (the CLI shows "-")
    assert table(asyncio.run(ask(fed, usage, group_by=["region", "vendor"], until=2_000.0))) == {
        ("guangdong", "nvidia"): 80.0, ("", ""): 10.0, ("TOTAL",): 90.0}
    usage.put([UsageRecord("c.g1.gd-nv", "c", "research", "alice", "default", "gd-nv", "provA", H100, 1_000,
                           1_000.0, 1_010.0, region="guangdong", vendor="nvidia")])
    fed.store.close()
    usage.close()
    # 0.13.0 again on the same file (a rollback): its insert, which names no columns, still takes its records
    rolled = sqlite3.connect(db)
    rolled.execute(OLD_INSERT, ("d.g1.gd-nv", "d", "research", "alice", "default", "gd-nv", "provA", H100, 1_000,
                                1_000.0, 1_010.0))
    rolled.commit()
    assert rolled.execute("SELECT count(*) FROM usage").fetchone() == (4,)
    rolled.close()


def test_retention_deletes_a_records_region_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = SqliteUsageStore(tmp_path / "usage.db")
    usage.put([UsageRecord(f"p{i}", "j", "q", "u", "ns", "c", "", H100, 1_000, 0.0, 10.0, region="r",
                           vendor="nvidia") for i in range(3)])
    assert usage.prune(ended_before=100.0, batch=2) == 2
    assert usage.prune(ended_before=100.0, batch=2) == 1
    db = sqlite3.connect(tmp_path / "usage.db")
    assert db.execute("SELECT count(*) FROM usage_where").fetchone() == (0,)
    # rows left by a rolled-back release's retention (their records gone, their regions not) go too, a slice of
    # the table a pass (here 2 rows), round and round, the rows of records kept staying
    usage.put([UsageRecord("kept", "j", "q", "u", "ns", "c", "", H100, 1_000, 0.0, None, region="r", vendor="v")])
    db.executemany("INSERT INTO usage_where VALUES (?, 'r', 'nvidia')", [(f"orphan-{i}",) for i in range(5)])
    db.commit()
    monkeypatch.setattr(store, "ORPHAN_SLICE", 2)
    for _ in range(4):
        assert usage.prune(ended_before=100.0, batch=2) == 0
    assert db.execute("SELECT placement_id FROM usage_where").fetchall() == [("kept",)]
    db.close()
    usage.close()


@pytest.mark.parametrize(("asked", "field", "words"), [
    ({"by": "region", "group_by": ["region", "model"]}, "group_by", "give by or group_by, not both"),
    ({"group_by": ["model", "provnce"]}, "group_by[1]", "must be one of queue, user, namespace, cluster, provider, "
                                                        "model, job, region, vendor, placement, got 'provnce'"),
    ({"group_by": ["model", "model"]}, "group_by[1]", "model is given twice"),
    ({"group_by": ["x"] * 10_000}, "group_by", "at most 10 dimensions, each once, got 10000"),
])
def test_a_bad_grouping_is_invalid_argument_naming_the_field(tmp_path: Path, asked: dict[str, object], field: str,
                                                            words: str) -> None:
    fed = Federator(store=SqliteJobStore(tmp_path / "federator.db"), clock=Clock(1_000.0))
    usage = SqliteUsageStore(tmp_path / "federator.db")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        asyncio.run(ask(fed, usage, **asked))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"{field}: {words}" in (err.value.details() or ""), err.value.details()
    fed.store.close()
    usage.close()


def _two_by_two() -> usage_pb2.UsageResponse:
    rows = [usage_pb2.UsageRow(key=f"provA / {H100}", keys=["provA", H100], micro_accelerator_seconds=3_000_000,
                               accelerator_seconds=3.0, placements=1),
            usage_pb2.UsageRow(key="provB / Ascend910B3", keys=["provB", ASCEND], micro_accelerator_seconds=1_000_000,
                               accelerator_seconds=1.0, placements=2),
            usage_pb2.UsageRow(key=" / MysteryChip", keys=["", "MysteryChip"], micro_accelerator_seconds=500_000,
                               accelerator_seconds=0.5, placements=1)]
    return usage_pb2.UsageResponse(since=1_000.0, until=2_000.0, group_by=["provider", "model"], rows=rows,
                                   total=usage_pb2.UsageRow(micro_accelerator_seconds=4_500_000,
                                                            accelerator_seconds=4.5, placements=4))


def test_the_cli_repeats_by_and_shows_a_column_per_dimension_in_every_output() -> None:
    assert build_parser().parse_args(["usage", "--by", "provider", "--by", "model"]).by == ["provider", "model"]
    assert build_parser().parse_args(["usage", "--by", "region"]).by == ["region"]
    resp, by = _two_by_two(), ["provider", "model"]
    text = render(resp, output="table", by=by).splitlines()
    assert text[1].split()[:3] == ["PROVIDER", "MODEL", "ACCELERATOR-SECONDS"]
    assert text[2].split()[:3] == ["provA", H100, "3.0"]
    assert text[4].split()[:3] == ["-", "MysteryChip", "0.5"]  # no provider: "-", as for one --by
    assert text[5].split()[:2] == ["TOTAL", "4.5"]
    assert text[-1].startswith("the TOTAL adds accelerator-seconds of different models")
    body = list(csv.reader(io.StringIO(render(resp, output="csv", by=by))))
    assert body[0][:3] == ["provider", "model", "accelerator_seconds"]
    assert body[1][:2] == ["provA", H100] and body[-1][:3] == ["TOTAL", "", "4.500000"]
    doc = json.loads(render(resp, output="json", by=by))
    assert doc["by"] == "provider,model" and doc["groupBy"] == by
    assert [r["keys"] for r in doc["rows"]] == [["provA", H100], ["provB", ASCEND], ["", "MysteryChip"]]
    # grouped by provider alone, one row per provider: no caveat that devices of several kinds are added
    one = usage_pb2.UsageResponse(by="provider", rows=[usage_pb2.UsageRow(key="provA", keys=["provA"])])
    assert "TOTAL adds" not in render(one, output="table", by="provider")


def test_the_cli_refuses_to_read_an_older_federators_total_as_a_grouping() -> None:
    """A federator before 0.14.0 ignores group_by and answers the total only, with group_by empty."""
    old = usage_pb2.UsageResponse(total=usage_pb2.UsageRow(micro_accelerator_seconds=1))
    assert older_server(old, ["provider", "model"])
    assert not older_server(old, ["provider"])  # one --by is sent as `by`, which every release reads
    assert not older_server(_two_by_two(), ["provider", "model"])
    # and a 0.13.0 server's single-`by` row (no keys) renders as before
    legacy = usage_pb2.UsageResponse(by="model", rows=[usage_pb2.UsageRow(key=H100, micro_accelerator_seconds=1)])
    assert render(legacy, output="table", by=["model"]).splitlines()[2].split()[0] == H100
