"""After a restart, the loop places nothing until the clusters expected back have reported (server/settle.py).

A fake clock and an in-memory store, the loop's own turn (`Federator.tick`); the same store is loaded
again as after SIGKILL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from server_support import Clock, MemoryStore, join, make, placed_on, spec

from federator.model import ClusterState, Job, JobPhase
from federator.server.federator import Federator
from federator.server.orders import LaunchOrder
from federator.server.settle import Settling

SETTLE = 10.0


def _run_on(fed: Federator, cluster: str, name: str) -> Job:
    """A job placed and running on `cluster` (the only Ready one)."""
    job = fed.submit(spec(name, gpus=8))
    fed.schedule_once()
    (p,) = job.placements
    assert p.cluster == cluster
    fed.acked(fed.clusters[cluster], p.placement_id)
    return job


def _restarted_with_work_on_both(store: MemoryStore, clock: Clock) -> Federator:
    """A federator that ran a job on each of east-1 and west-1 (own regions), then restarted from its store:
    both clusters are expected back; a backlog of four one-node jobs waits."""
    before = make(store, clock)
    join(before, "east-1", region="east")
    _run_on(before, "east-1", "on-east")
    before.disconnect(before.clusters["east-1"])
    join(before, "west-1", region="west")
    _run_on(before, "west-1", "on-west")
    for i in range(4):
        before.submit(spec(f"backlog-{i}", gpus=8))
    clock.now += 1
    fed = make(store, clock, settle_seconds=SETTLE)
    assert {n: r.state for n, r in fed.clusters.items()} == {"east-1": ClusterState.PARTITIONED,
                                                              "west-1": ClusterState.PARTITIONED}
    return fed


def _back(fed: Federator, cluster: str, region: str) -> None:
    """The cluster's agent reconnects and reports, holding the placement it had."""
    held = [p.placement_id for j in fed.jobs.values() for p in j.placements if p.cluster == cluster]
    join(fed, cluster, *held, region=region)


def test_the_backlog_waits_for_every_expected_cluster_then_goes_to_both() -> None:
    clock = Clock()
    fed = _restarted_with_work_on_both(MemoryStore(), clock)

    async def main() -> None:
        _back(fed, "east-1", "east")
        clock.now += 2
        assert await fed.tick() is None  # west-1 is expected back: nothing placed on east-1 alone
        assert placed_on(fed, "backlog-") == {}
        _back(fed, "west-1", "west")
        assert await fed.tick() is not None
        fed.cycles.close()

    asyncio.run(main())
    assert placed_on(fed, "backlog-") == {"east-1": 2, "west-1": 2}  # RegionLoad shares the backlog between the regions


def test_without_the_wait_the_first_cluster_back_took_the_backlog() -> None:
    """What the wait is for: with --settle-seconds 0 the first cycle after east-1 came back placed all the
    backlog on it."""
    clock = Clock()
    fed = _restarted_with_work_on_both(MemoryStore(), clock)
    fed.settling = Settling(clock.now, 0)

    async def main() -> None:
        _back(fed, "east-1", "east")
        assert await fed.tick() is not None
        _back(fed, "west-1", "west")
        await fed.tick()
        fed.cycles.close()

    asyncio.run(main())
    assert placed_on(fed, "backlog-") == {"east-1": 4}


def test_a_cluster_that_stays_away_holds_the_backlog_only_until_the_settle_time(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    fed = _restarted_with_work_on_both(MemoryStore(), clock)
    caplog.set_level(logging.INFO, logger="federator.server")

    async def main() -> None:
        _back(fed, "east-1", "east")
        assert await fed.tick() is None
        clock.now += SETTLE - 1  # 9 s after the restart
        fed.report(fed.clusters["east-1"], fed.clusters["east-1"].capacity)  # east-1 keeps its lease
        assert await fed.tick() is None
        clock.now += 1  # the settle time is up; west-1 is still Partitioned, not Lost
        fed.report(fed.clusters["east-1"], fed.clusters["east-1"].capacity)
        assert await fed.tick() is not None
        fed.cycles.close()

    asyncio.run(main())
    assert fed.clusters["west-1"].state is ClusterState.PARTITIONED
    assert placed_on(fed, "backlog-") == {"east-1": 4}
    assert "holding placements for up to 10s until 1 expected member cluster(s) report: west-1" in caplog.text
    assert "placing without 1 member cluster(s) that have not reported since the start: west-1" in caplog.text


def test_a_new_federator_expects_no_one_and_places_at_once() -> None:
    fed = make(MemoryStore(), Clock(), settle_seconds=SETTLE)
    job = fed.submit(spec("first", gpus=8))

    async def main() -> None:
        rec = join(fed, "east-1", region="east")
        assert await fed.tick() is not None
        assert any(isinstance(o, LaunchOrder) for o in [rec.outbox.get_nowait()])
        fed.cycles.close()

    asyncio.run(main())
    assert job.phase is JobPhase.PLACED


def test_a_lost_cluster_is_not_waited_for() -> None:
    settling = Settling(100.0, SETTLE)
    assert settling.holding(101.0, lambda: ["west-1"])
    assert not settling.holding(102.0, lambda: [])  # west-1 reported, or went Lost (unreported leaves it out)
    assert not settling.holding(103.0, lambda: ["west-1"])  # latched: a cluster that goes away later holds nothing


def test_a_negative_settle_time_is_refused_naming_the_flag(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    got = subprocess.run([sys.executable, "-m", "federator", "serve", "--insecure", "--db", str(tmp_path / "f.db"),
                          "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--settle-seconds", "-1"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert got.returncode == 2
    assert got.stderr.strip() == "federator serve: --settle-seconds: must be 0 or a positive number, got -1"
    assert not (tmp_path / "f.db").exists()


def test_until_the_expected_clusters_are_listed_nothing_is_placed() -> None:
    """Kubernetes mode lists the MemberClusters after the loop starts: an empty list of missing clusters
    means nothing until then (server/app.py clears `known`)."""
    settling = Settling(100.0, SETTLE)
    settling.known = False
    assert settling.holding(101.0, lambda: [])
    assert settling.holding(102.0, lambda: ["idle-1"])  # listed: one MemberCluster whose agent is not back
    settling.known = True
    assert settling.holding(103.0, lambda: ["idle-1"])
    assert not settling.holding(104.0, lambda: [])
    late = Settling(100.0, SETTLE)
    late.known = False
    assert not late.holding(110.0, lambda: [])  # the listing never came: the settle time still ends the wait


def test_a_job_submitted_during_the_wait_says_what_it_waits_for() -> None:
    clock = Clock()
    fed = _restarted_with_work_on_both(MemoryStore(), clock)

    async def main() -> list[str]:
        said = []
        _back(fed, "east-1", "east")
        clock.now += 3
        assert await fed.tick() is None
        for name in ("during", "after"):
            job = fed.submit(spec(name, gpus=8))
            assert job.pending_reason is not None
            said.append(job.pending_reason.message)
            _back(fed, "west-1", "west")
            assert await fed.tick() is not None
        fed.cycles.close()
        return said

    assert asyncio.run(main()) == [
        "waiting up to 7s for the member clusters expected back after the federator's start to report",
        "waiting for the next scheduling cycle"]


def test_the_wait_goes_on_while_clusters_keep_coming_back_up_to_six_times_the_settle_time() -> None:
    """Outside SRE: 243 agents reconnect at about 20 a second, and a fixed 10 s placed the backlog without 149 of
    them. The wait now runs `--settle-seconds` from the latest cluster back, capped at six times it."""
    missing = [f"c{i}" for i in range(300)]
    s = Settling(started=0.0, seconds=SETTLE)
    now = 0.0
    while s.holding(now, lambda: missing):
        now += 1.0
        del missing[:4]  # four a second come back: 75 s for all
    assert now == 6 * SETTLE and len(missing) == 300 - 4 * 60  # held to the cap, with the fleet still arriving
    slow = [f"c{i}" for i in range(300)]
    s = Settling(started=0.0, seconds=SETTLE)
    now = 0.0
    while s.holding(now, lambda: slow):
        now += 1.0
        if now <= 20:
            del slow[:15]  # all back in 20 s
    assert now == 20.0 and not slow
    stalled = Settling(started=0.0, seconds=SETTLE)
    assert stalled.holding(5.0, lambda: ["a", "b"]) and not stalled.holding(10.0, lambda: ["a", "b"])
