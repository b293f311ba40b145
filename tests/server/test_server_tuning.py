"""The live federator chooses Scarcity's scale by rollout (scheduler/tuning.py) on its cycle worker: once
demand appears, then only as often as the rollouts' cost allows, and again from scratch when the policy
changes."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from server_support import H100, Clock, MemoryStore, join, make, spec

from federator.scheduler import QueueConfig, Scheduler, SchedulerConfig

from builders import cluster, pool

A10, A100 = "NVIDIA-A10", "NVIDIA-A100-SXM4-80GB"


def test_the_first_cycle_with_demand_runs_a_rollout_and_the_next_ones_do_not() -> None:
    fed = make(MemoryStore(), Clock())
    join(fed, "east-1")
    fed.schedule_once()
    assert fed.cycles.tuner.rollouts == 0  # no demand: nothing to learn from
    fed.submit(spec("a", gpus=1))
    fed.schedule_once()
    tuner = fed.cycles.tuner
    assert tuner.rollouts == 1 and {t.scale for t in tuner.last} == {0.0, 4.0}
    assert all(t.placed_milli > 0 for t in tuner.last)
    fed.submit(spec("b", gpus=1))
    fed.schedule_once()
    assert fed.cycles.tuner.rollouts == 1  # paced: far fewer replicas placed since than it offered
    timed = fed.metrics.registry.get_sample_value("federator_scheduling_phase_duration_seconds_count",
                                                  {"phase": "rollout"})
    assert timed == 1.0  # the cycle that waited for it says so


def test_without_a_member_there_is_no_room_to_roll_out_until_one_joins() -> None:
    fed = make(MemoryStore(), Clock())
    fed.submit(spec("a", gpus=1))
    fed.schedule_once()
    assert fed.cycles.tuner.rollouts == 0 and fed.cycles.tuner.due()
    join(fed, "east-1")
    fed.schedule_once()
    assert fed.cycles.tuner.rollouts == 1


def test_a_queue_change_keeps_the_choice_and_its_pace() -> None:
    """In Kubernetes mode every Queue object edited swaps the config in; a thousand organisations editing
    their queues must not start a rollout at every cycle."""
    fed = make(MemoryStore(), Clock())
    join(fed, "east-1")
    fed.submit(spec("a", gpus=1))
    fed.schedule_once()
    for i in range(3):
        fed.set_scheduler_config(SchedulerConfig(queues={f"q{i}": QueueConfig(weight=2)}))
        fed.submit(spec(f"b{i}", gpus=1))
        fed.schedule_once()
    timed = fed.metrics.registry.get_sample_value("federator_scheduling_phase_duration_seconds_count",
                                                  {"phase": "rollout"})
    assert timed == 1.0 and fed.cycles.tuner.rollouts == 1
    assert fed.cycles.tuner.config is fed.scheduler.config  # the rollouts read the policy in force


def test_a_policy_with_one_scale_runs_no_rollout_and_a_new_policy_starts_over() -> None:
    fed = make(MemoryStore(), Clock(), scheduler=Scheduler(SchedulerConfig(scarcity_scales=(0.0,))))
    join(fed, "east-1")
    fed.submit(spec("a", gpus=1))
    fed.schedule_once()
    assert fed.cycles.tuner.rollouts == 0
    fed.set_scheduler_config(SchedulerConfig(scarcity_scales=(0.0, 2.0)))
    fed.submit(spec("b", gpus=1))
    fed.schedule_once()
    assert fed.cycles.tuner.rollouts == 1 and {t.scale for t in fed.cycles.tuner.last} == {0.0, 2.0}


def test_the_scale_a_rollout_finds_better_is_logged_and_used(caplog: pytest.LogCaptureFixture) -> None:
    """Two members of one-accelerator A10 nodes and 8-accelerator A100 and H100 nodes; a little work pinned
    to A10, much flexible one-accelerator work and two gangs of eight: the median scale presses the small
    work onto the big nodes the gangs need, the soft one (K = 4) does not (tests/scheduler/test_tuning.py)."""
    fed = make(MemoryStore(), Clock())
    for name in ("c0", "c1"):
        rec = fed.connect(cluster=name, region="r", labels={})
        fed.report(rec, cluster(name, "r", pool(A10, nodes=16, free=1, gpus_per_node=1), pool(A100, nodes=1),
                                pool(H100, nodes=1)).capacity)
    for i in range(4):
        fed.submit(replace(spec(f"pin{i}", gpus=1), accelerator_models=(A10,)))
    for i in range(20):
        fed.submit(spec(f"small{i}", gpus=1))
    for i in range(2):
        fed.submit(spec(f"gang{i}", gpus=8))
    with caplog.at_level(logging.INFO, logger="federator.server"):
        fed.schedule_once()
    tuner = fed.cycles.tuner
    got = {t.scale: t.placed_milli // 1000 for t in tuner.last}
    assert got[4.0] > got[0.0] and tuner.scale == 4.0
    assert f"Scarcity scale K=4 (was median): a rollout over the fleet placed {got[0.0]} accelerators at median, " \
           f"{got[4.0]} accelerators at K=4" in caplog.text


class _FailingTuner:
    """A tuner whose rollouts raise (a bug in them): what the cycle worker must survive."""

    def __init__(self, config: SchedulerConfig) -> None:
        self.config, self.scale, self.rollouts, self.last = config, 0.0, 0, ()
        self.tried = 0
        self.stopped = False

    def due(self) -> bool:
        return not self.stopped

    def tune(self, *args: object) -> float:
        self.tried += 1
        raise ZeroDivisionError("a bug in a rollout")

    def stop(self) -> None:
        self.stopped = True

    def placed(self, replicas: int) -> None:
        pass


def test_a_rollout_that_fails_is_logged_once_and_the_cycles_go_on(caplog: pytest.LogCaptureFixture) -> None:
    fed = make(MemoryStore(), Clock())
    join(fed, "east-1")
    failing = _FailingTuner(fed.scheduler.config)
    fed.cycles.tuner = failing  # type: ignore[assignment]
    jobs = [fed.submit(spec(f"j{i}", gpus=1)) for i in range(2)]
    with caplog.at_level(logging.ERROR, logger="federator.server"):
        fed.schedule_once()
        fed.submit(spec("late", gpus=1))
        fed.schedule_once()
    assert all(fed.jobs[j.job_id].placements for j in jobs) and fed.jobs[[*fed.jobs][-1]].placements
    assert failing.tried == 1 and failing.stopped
    said = [r for r in caplog.records if "rollouts that choose Scarcity's scale failed" in r.getMessage()]
    assert len(said) == 1 and "the cycles keep median" in said[0].getMessage()
