"""A provider's maintenance (outside provider QA F5; server/maintenance.py): the cluster's own agent asks, in every
report, for no new work there; the federator treats it as a cordon of its own, independent of an admin's."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest
from server_support import Clock, MemoryStore, capacity, join, make, spec

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.cli.output import cluster_rows
from federator.model import ClusterState, JobPhase
from federator.model.cordon import Cordon
from federator.server.federator import Federator
from federator.server.orders import LaunchOrder
from federator.server.services import AgentService

WHY = "driver upgrade, ticket 4711"


def report(sequence: int, *placement_ids: str, maintenance: str = "") -> agent_pb2.AgentMessage:
    msg = agent_pb2.AgentMessage(capacity=convert.capacity_to_pb(capacity(*placement_ids)))
    msg.capacity.sequence, msg.capacity.maintenance = sequence, maintenance
    return msg


def placed(fed: Federator, name: str) -> list[str]:
    job = fed.submit(spec(name))
    fed.schedule_once()
    return [p.cluster for p in job.placements]


def test_a_cluster_whose_agent_asks_for_maintenance_takes_no_new_work_and_keeps_what_it_runs() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    service = AgentService(fed)
    b = join(fed, "member-b")
    b.labels["federator.io/provider"] = "prov"
    running = fed.submit(spec("running"))
    fed.schedule_once()
    (p,) = running.placements
    assert p.cluster == "member-b"
    fed.acked(b, p.placement_id)
    fed.job_update(b, p.placement_id, JobPhase.RUNNING, "1 replica running")
    _drain(b)

    assert service.handle(b, report(5, p.placement_id, maintenance=f"  {WHY}\x1b[2J ")) is None
    held = fed.cordons.maintenance.get("member-b")
    assert held == Cordon("provider prov", clock.now, WHY + "\\x1b[2J")  # its words, escaped, since now
    assert fed.cordons.get("member-b") is None  # not an admin's cordon: uncordon does not end it
    new = fed.submit(spec("new"))
    fed.schedule_once()
    assert new.phase is JobPhase.PENDING and new.pending_reason is not None
    assert "member-b is Cordoned" in new.pending_reason.message
    assert not [o for o in _drain(b) if isinstance(o, LaunchOrder)]
    assert running.phase is JobPhase.RUNNING and b.state is ClusterState.READY  # untouched
    assert 'federator_cluster_cordoned{cluster="member-b",region="r"} 1.0' in \
        generate_latest(fed.metrics.registry).decode()

    # An admin's cordon is independent: uncordoning it leaves the provider's maintenance holding.
    assert asyncio.run(fed.cordons.cordon("member-b", Cordon("admin", clock.now, "looking")))
    assert asyncio.run(fed.cordons.uncordon("member-b")) is not None
    fed.schedule_once()
    assert new.phase is JobPhase.PENDING
    # A later report with other words keeps the time it began.
    clock.now += 5
    assert service.handle(b, report(6, p.placement_id, maintenance="firmware too")) is None
    assert fed.cordons.maintenance.get("member-b") == Cordon("provider prov", held.at if held else 0.0,
                                                             "firmware too")

    # The first report without it ends it: the waiting job is placed there at once.
    assert service.handle(b, report(7, p.placement_id)) is None
    assert fed.cordons.maintenance.get("member-b") is None
    fed.schedule_once()
    assert [q.cluster for q in new.placements] == ["member-b"]


def test_an_admins_cordon_outlasts_the_end_of_the_providers_maintenance() -> None:
    clock = Clock()
    fed = make(MemoryStore(), clock)
    service = AgentService(fed)
    b = join(fed, "member-b")
    assert service.handle(b, report(5, maintenance=WHY)) is None
    assert placed(fed, "first") == []
    assert asyncio.run(fed.cordons.cordon("member-b", Cordon("admin", clock.now, "investigating")))
    assert service.handle(b, report(6)) is None  # the provider is done; the admin is not
    fed.schedule_once()
    assert all(not job.placements for job in fed.jobs.values())
    assert asyncio.run(fed.cordons.uncordon("member-b")) is not None
    fed.schedule_once()
    assert "member-b" in [p.cluster for job in fed.jobs.values() for p in job.placements]  # it takes work again


def test_a_report_refused_as_implausible_still_puts_the_cluster_in_maintenance() -> None:
    """A provider whose reports are frozen by trust.yaml's bound (QA F4) can still keep new work off."""
    clock = Clock()
    fed = make(MemoryStore(), clock)
    service = AgentService(fed)
    b = join(fed, "member-b")
    bad = report(5, maintenance=WHY)
    bad.capacity.cpu_milli_free = bad.capacity.cpu_milli_allocatable + 1  # more free than there is
    assert service.handle(b, bad) is not None  # refused
    assert fed.cordons.maintenance.get("member-b") is not None
    assert placed(fed, "new") == []


def test_get_clusters_shows_a_maintenance_as_cordoned_and_its_reason_wide() -> None:
    row = {"name": "member-b", "region": "r", "state": "Ready", "capacity": None, "placements": 0,
           "last_report_at": 0.0, "maintenance": WHY, "cordoned": True, "cordoned_by": "admin",
           "cordon_reason": "looking"}
    headers, [line] = cluster_rows([row], wide=True)
    assert line[headers.index("STATE")] == "Ready,Cordoned"
    assert line[headers.index("CORDONED BY")] == f"admin: looking; provider maintenance: {WHY}"
    headers, [line] = cluster_rows([{**row, "cordoned": False}], wide=False)
    assert line[headers.index("STATE")] == "Ready,Cordoned"


def _drain(rec: object) -> list[object]:
    out = []
    outbox = rec.outbox  # type: ignore[attr-defined]
    while not outbox.empty():
        out.append(outbox.get_nowait())
    return out
