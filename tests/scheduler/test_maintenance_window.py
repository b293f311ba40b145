"""The MaintenanceWindow filter: a cluster whose maintenance window is ahead takes only the jobs whose run bound ends
before the window begins; a job with no bound, or one that would cross it, goes elsewhere or waits, saying why."""

from __future__ import annotations

from dataclasses import replace

import pytest

from federator.model import ReasonCode
from federator.scheduler import Scheduler, Snapshot
from federator.scheduler.config import SchedulerConfig
from federator.scheduler.framework import CycleContext, PlacementRequest
from federator.scheduler.maintenance_window import MaintenanceWindow
from federator.scheduler.plugins import FILTERS

from builders import cluster, job, pool, request

H100 = "NVIDIA-H100-80GB-HBM3"
STARTS = 1_796_716_800.0  # Tuesday 2026-12-08 08:00 UTC, the window of H12
NOW = STARTS - 9 * 3600  # Monday 23:00, when a 12-hour job asks


def bounded(name: str, seconds: int) -> PlacementRequest:
    return replace(request(job(name, gpus=8)), run_seconds=seconds)


@pytest.mark.parametrize(("run_seconds", "passes"), [
    (3600, True),  # done 8 hours before the window
    (9 * 3600, True),  # ends exactly as it begins
    (9 * 3600 + 1, False),  # one second into it
    (12 * 3600, False),  # the 12-hour job of H12
    (0, False),  # no bound: it could run for ever
])
def test_a_cluster_passes_exactly_when_the_run_bound_ends_by_the_window(run_seconds: int, passes: bool) -> None:
    said = MaintenanceWindow().filter(bounded("j", run_seconds), cluster("east-1", "us-east", pool(H100, nodes=2)),
                                      CycleContext(maintenance={"east-1": STARTS}, now=NOW))
    assert (said is None) is passes, said


def test_a_cluster_without_a_window_is_not_filtered() -> None:
    said = MaintenanceWindow().filter(bounded("j", 0), cluster("west-1", "us-west", pool(H100, nodes=2)),
                                      CycleContext(maintenance={"east-1": STARTS}, now=NOW))
    assert said is None


def test_the_reason_says_the_window_the_rule_and_the_jobs_case() -> None:
    east = cluster("east-1", "us-east", pool(H100, nodes=2))
    ctx = CycleContext(maintenance={"east-1": STARTS}, now=NOW)
    crossing = MaintenanceWindow().filter(bounded("j", 12 * 3600), east, ctx)
    assert crossing is not None and crossing.code is ReasonCode.CLUSTER_NOT_READY
    assert crossing.message == ("east-1 has maintenance from 2026-12-08T08:00:00Z: a job with no run bound, or one "
                                "that would cross it, is not started there (this job may run 12h0m0s; it begins "
                                "in 9h0m0s)")
    unbounded = MaintenanceWindow().filter(bounded("j", 0), east, ctx)
    assert unbounded is not None
    assert unbounded.message.endswith("(this job has no run bound: give spec.maxRunSeconds)")


def test_the_filter_is_on_by_default() -> None:
    assert "MaintenanceWindow" in FILTERS
    assert "MaintenanceWindow" in SchedulerConfig().filters


def test_a_short_job_is_placed_on_the_cluster_and_a_long_one_goes_elsewhere() -> None:
    """East is cheaper, so without the window both jobs would go there."""
    snapshot = Snapshot.of([cluster("east-1", "us-east", pool(H100, nodes=1), price=1.0),
                            cluster("west-1", "us-west", pool(H100, nodes=1), price=9.0)])
    short, long_ = bounded("short", 3600), bounded("long", 12 * 3600)
    for req, where in ((short, "east-1"), (long_, "west-1")):
        result = Scheduler().schedule(snapshot, [req], now=NOW, maintenance={"east-1": STARTS})
        assert [a.cluster for d in result.decisions for a in d.assignments] == [where], req.job_id
    # and without a window the long one would have gone to east-1: the window is what moved it
    result = Scheduler().schedule(snapshot, [long_], now=NOW)
    assert [a.cluster for d in result.decisions for a in d.assignments] == ["east-1"]


def test_a_job_with_no_bound_waits_naming_the_window_when_only_that_cluster_has_room() -> None:
    snapshot = Snapshot.of([cluster("east-1", "us-east", pool(H100, nodes=1))])
    result = Scheduler().schedule(snapshot, [bounded("j", 0)], now=NOW, maintenance={"east-1": STARTS})
    assert not result.decisions
    said = result.pending["j"]
    assert said.code is ReasonCode.CLUSTER_NOT_READY
    assert "east-1 has maintenance from 2026-12-08T08:00:00Z: a job with no run bound" in said.message
    # a bound that ends in time is placed on the same snapshot
    result = Scheduler().schedule(snapshot, [bounded("j", 3600)], now=NOW, maintenance={"east-1": STARTS})
    assert [a.cluster for d in result.decisions for a in d.assignments] == ["east-1"]


def test_jobs_of_one_shape_but_for_their_bounds_are_judged_apart_in_one_cycle() -> None:
    """The filter is cycle-constant (plugins.CYCLE_CONSTANT_FILTERS): its verdict is cached per shape, so the run
    bound must be part of the shape, or the first job's verdict would be the second's."""
    snapshot = Snapshot.of([cluster("east-1", "us-east", pool(H100, nodes=2))])
    result = Scheduler().schedule(snapshot, [bounded("long", 12 * 3600), bounded("short", 3600)], now=NOW,
                                  maintenance={"east-1": STARTS})
    assert [d.job_id for d in result.decisions] == ["short"]
    assert result.pending["long"].code is ReasonCode.CLUSTER_NOT_READY
