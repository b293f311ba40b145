"""The bill of a placement on a partition pool (MIG, Ascend vNPU) is what it holds: its partitions at their worth.

Eight 1g.10gb partitions of an 80 GB GPU (125m each) asked by name were billed as eight GPUs by 0.11.0; a 300m
replica on a 500m partition was billed 300m though nobody else could use the rest. The federator records the
partition's worth on the placement when it places it (Placement.unit_milli), so a restart bills the same; a
placement stored by 0.11.0 has none and is billed as it was (what it asked). A scripted run on the simulated clock,
read back over the real gRPC usage API, so every accelerator-second is known in advance.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from test_usage import Clock, ask, running, start, table

from federator.accounting.meter import held
from federator.api.convert import job_from_pb, job_to_pb
from federator.jobfile import parse_job
from federator.model import AcceleratorPool, Job, JobId, JobPhase, JobSpec, format_job_accelerators
from federator.security.authz import Principal, stamp_owner
from federator.server.federator import Federator
from federator.store.codec import job_from_dict, job_to_dict

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"
MIG_1G, MIG_3G = f"{H100}-MIG-1g.10gb", f"{H100}-MIG-3g.40gb"


def partitions(model: str, *, count: int, unit: int) -> AcceleratorPool:
    profile = model.rsplit("-MIG-", 1)[1]
    return replace(pool(model, nodes=1, free=count, gpus_per_node=count), sharing="MIG", unit_milli=unit,
                   resource_name=f"nvidia.com/mig-{profile}")


def join(fed: Federator, *placement_ids: str) -> None:
    """One member with whole H100s, 1g.10gb partitions (125m) and 3g.40gb ones (500m)."""
    rec = fed.connect(cluster="mig-1", region="r", labels={"federator.io/provider": "acme"})
    whole = replace(pool(H100, nodes=1, free=8), sharing="None", resource_name="nvidia.com/gpu")
    capacity = cluster("mig-1", "r", whole, partitions(MIG_1G, count=16, unit=125),
                       partitions(MIG_3G, count=4, unit=500)).capacity
    fed.report(rec, replace(capacity, placement_ids=frozenset(placement_ids)))


def spec(name: str, replicas: int, resources: dict[str, object], **more: object) -> JobSpec:
    s = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                   "spec": {"kind": "training", "replicas": replicas, "queue": "research",
                            "resources": {"cpu": "1", **resources}, **more}})
    return stamp_owner(s, Principal("alice"))


def test_partitions_are_billed_at_their_worth_and_a_restart_bills_the_same(tmp_path: Path) -> None:
    db, clock = tmp_path / "federator.db", Clock(1_000.0)
    fed, meter, usage = start(db, clock)
    join(fed)
    by_name = fed.submit(spec("by-name", 8, {}, accelerators=[{"model": MIG_1G, "count": 1}]))
    fraction = fed.submit(spec("fraction", 2, {"nvidia.com/gpu": "300m"}, acceleratorModels=["H100"]))
    whole = fed.submit(spec("whole", 1, {"nvidia.com/gpu": 2}, acceleratorModels=["H100"]))
    fed.schedule_once()
    jobs = [fed.jobs[j.job_id] for j in (by_name, fraction, whole)]
    assert [(p.accelerator_model, p.unit_milli) for j in jobs for p in j.placements] == [
        (MIG_1G, 125), (MIG_3G, 500), (H100, 0)]
    # what `federator get jobs` shows, through the wire as the CLI reads it: what each job holds
    assert [format_job_accelerators(job_from_pb(job_to_pb(j))) for j in jobs] == ["1", "1", "2"]
    for j in jobs:
        running(fed, j.job_id, JobPhase.RUNNING)
    clock.now = 1_100.0
    meter.tick()
    assert table(asyncio.run(ask(fed, usage, by="model"))) == {  # 1 x 100 s, 2 x 500m x 100 s, 2 x 100 s
        H100: 200.0, MIG_1G: 100.0, MIG_3G: 100.0, "TOTAL": 400.0}
    assert fed.metrics.registry.get_sample_value(
        "federator_accelerator_seconds_total",
        {"queue": "research", "cluster": "mig-1", "provider": "acme", "model": MIG_1G, "region": "r",
         "vendor": "nvidia"}) == 100.0

    # The federator restarts on the same files; the jobs run on. The stored placements keep their worth: their
    # records carry on at it (a changed count would have closed them and opened others).
    fed.store.close()
    usage.close()
    clock.now = 1_150.0
    fed, meter, usage = start(db, clock)
    assert sorted(r.accelerators_milli for r in meter.open.values()) == [1000, 1000, 2000]
    join(fed, *(p.placement_id for j in jobs for p in fed.jobs[j.job_id].placements))
    for j in jobs:
        running(fed, j.job_id, JobPhase.RUNNING)
    clock.now = 1_200.0
    for j in jobs:
        running(fed, j.job_id, JobPhase.SUCCEEDED)
    clock.now = 2_000.0
    resp = asyncio.run(ask(fed, usage, by="model"))
    assert table(resp) == {H100: 400.0, MIG_1G: 200.0, MIG_3G: 200.0, "TOTAL": 800.0}
    assert len(resp.rows) == 3 and sum(r.placements for r in resp.rows) == 3  # no resized record


def test_a_placement_stored_by_0_11_0_is_billed_as_it_asked() -> None:
    """0.11.0 wrote no worth: its placement on a partition pool bills its count, as then, not a guess."""
    job = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "old"},
                     "spec": {"kind": "training", "replicas": 8, "resources": {"cpu": "1"},
                              "accelerators": [{"model": MIG_1G, "count": 1}]}})
    submitted = Job(job_id=JobId("old"), spec=job, submitted_at=0.0)
    doc = job_to_dict(submitted)
    placed = {"placement_id": "old.g1.mig-1", "job_id": submitted.job_id, "cluster": "mig-1", "region": "r",
              "replicas": 8, "accelerator_model": MIG_1G, "generation": 1, "phase": "Running", "message": "",
              "accelerator_vendor": "nvidia", "accelerator_resource": "nvidia.com/mig-1g.10gb",
              "accelerator_milli": 1000, "alternative": 0, "replicas_running": 8, "replicas_ready": 8,
              "ended_at": 0.0}  # a 0.11.0 document: no unit_milli
    old = job_from_dict({**doc, "phase": "Running", "placements": [placed]})
    assert old.placements[0].unit_milli == 0
    assert held(old, old.placements[0]) == (MIG_1G, 8000)
    assert job_to_dict(old)["placements"] == [placed]  # written back as it was read
    new = job_from_dict({**doc, "phase": "Running", "placements": [{**placed, "unit_milli": 125}]})
    assert held(new, new.placements[0]) == (MIG_1G, 1000)
