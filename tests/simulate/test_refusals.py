"""Refusals: what the federator places, the nodes take. Counted in seeded fill runs, never timed."""

from __future__ import annotations

import dataclasses

import pytest

from federator.backends.sim.fleet import ClusterSpec, parse_fleet
from federator.scheduler import Scheduler, SchedulerConfig, Snapshot
from federator.simulate import SimJob, Simulation
from federator.simulate.synth import generate_mix
from federator.simulate.traces import _pod


def fleet(cpu8: int, cpu1: int) -> dict[str, ClusterSpec]:
    """Four clusters of 6 x 8 H100, 6 x 8 A100 and 16 x 1 A10 nodes, with the CPUs given."""
    return parse_fleet({"clusters": [
        {"name": f"c{i}", "region": f"r{i}", "nodes": [
            {"count": 6, "gpuModel": "H100", "gpus": 8, "cpu": cpu8, "memory": f"{cpu8 * 8}Gi"},
            {"count": 6, "gpuModel": "A100", "gpus": 8, "cpu": cpu8, "memory": f"{cpu8 * 8}Gi"},
            {"count": 16, "gpuModel": "A10", "gpus": 1, "cpu": cpu1, "memory": f"{cpu1 * 8}Gi"}]}
        for i in range(4)]})


def mix(clusters: dict[str, ClusterSpec], seed: int) -> list[SimJob]:
    """Pinned, fractional and multi-GPU pods until they ask for every GPU of the fleet."""
    capacity = sum(n.accelerators for c in clusters.values() for n in c.nodes) * 1000
    rows = generate_mix(2000, seed=seed, models=["A10", "A100", "H100"], model_gpus={"A10": 1, "A100": 8, "H100": 8},
                        pinned=0.33, fractional=0.35, multi=0.3)
    jobs, asked = [], 0
    for i, row in enumerate(rows):
        job = _pod(row, "synth", i)
        if asked + job.spec.resources.accelerator_milli > capacity:
            break
        asked += job.spec.resources.accelerator_milli
        jobs.append(SimJob(job.spec, float(i), None))
    return jobs


class WithoutHostRoom(Simulation):
    """The resource model as it was: per-node GPU counts, no CPU or memory per node."""

    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(
            dataclasses.replace(c, capacity=dataclasses.replace(c.capacity, accelerator_pools=tuple(
                dataclasses.replace(p, host_room=(), shared_room=(), room_classes=())
                for p in c.capacity.accelerator_pools)))
            for c in super().snapshot().clusters))


class OneNodeRoom(Simulation):
    """The resource model before room classes: one node's room per bucket (host_room, shared_room)."""

    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(
            dataclasses.replace(c, capacity=dataclasses.replace(c.capacity, accelerator_pools=tuple(
                dataclasses.replace(p, room_classes=()) for p in c.capacity.accelerator_pools)))
            for c in super().snapshot().clusters))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_refusals_stay_under_one_percent_of_placements(seed: int) -> None:
    clusters = fleet(128, 32)
    report = Simulation(clusters, mix(clusters, seed), batch=200).run("fill")
    assert report.placements > 200
    assert report.refused <= 0.01 * report.placements, (report.refused, report.placements)


def test_host_room_in_the_resource_model_cuts_refusals_on_cpu_bound_nodes() -> None:
    """Nodes short of CPU for their GPUs: without host room the federator keeps sending replicas
    the nodes cannot host, and the jobs it sends back place no more jobs in the end."""
    clusters = fleet(64, 16)
    jobs = mix(clusters, 3)
    with_room = Simulation(clusters, jobs, batch=200).run("fill")
    without = WithoutHostRoom(clusters, jobs, batch=200).run("fill")
    assert with_room.refused * 2 < without.refused
    assert with_room.jobs_placed > without.jobs_placed


def test_room_classes_cut_the_refusals_one_nodes_room_leaves_on_cpu_bound_nodes() -> None:
    """The same CPU-bound fleet: one node's room per bucket speaks for nodes that have less, and a take
    leaves a bucket's room as it was; the classes count every node and move the one that took a replica.
    Over five seeds: 71 refusals with one node's room, 35 with the classes, and as many jobs placed
    (1,331 and 1,332). Summed, because a run of 265 jobs in two cycles swings by a few jobs either way
    with any change of policy (seed 3 alone: 29 and 10 refusals, one job fewer placed). One fixed scale
    for `Scarcity` on both sides: the rollouts that choose it (scheduler/tuning.py) see each resource model's
    own room, so with `auto` the two runs may place by different policies (1,336 jobs with one node's room,
    which chose differently on seed 3, against 1,332), which is not what this compares."""
    clusters = fleet(64, 16)
    median = Scheduler(SchedulerConfig(scarcity_scales=(0.0,)))
    refused = {"classes": 0, "one node": 0}
    placed = {"classes": 0, "one node": 0}
    for seed in range(1, 6):
        jobs = mix(clusters, seed)
        for name, sim in (("classes", Simulation), ("one node", OneNodeRoom)):
            report = sim(clusters, jobs, batch=200, scheduler=median).run("fill")
            refused[name] += report.refused
            placed[name] += report.jobs_placed
    assert refused["classes"] * 3 < refused["one node"] * 2, refused
    assert placed["classes"] >= placed["one node"], placed
