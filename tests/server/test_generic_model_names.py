"""A vendor's generic model name (`MLU`, `DCU`, `Gaudi`, `AMD-GPU`) selects every pool of that vendor.

0.10.0 named every Cambricon, Hygon and Gaudi node by the vendor's default model (pool `MLU`), so jobs were written
and stored with `model: MLU`. 0.11.0 names the pools by the labellers (`MLU370-X8`): such a job, kept across the
upgrade, waited for ever beside free MLU370-X8s, "cx has no MLU nodes" (outside QA, vendors2 R8). The pools'
reports cross the real wire edge here (capacity_to_pb / capacity_from_pb) as the 0.11.0 agent sends them: without
a family, which the federator fills in from its catalog.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from server_support import job_api

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.catalog import builtin_catalog
from federator.jobfile import JobFileError
from federator.jobfile_loading import parse_job_documents
from federator.model import AcceleratorPool, ClusterCapacity
from federator.scheduler import Scheduler, Snapshot
from federator.server.fleet_models import FleetModels

from builders import cluster, request

H100 = "NVIDIA-H100-80GB-HBM3"


def _wire(model: str, vendor: str, resource: str) -> AcceleratorPool:
    """One node of 8 free devices, as an agent reports it (no family, no memory) and the federator reads it."""
    sent = AcceleratorPool(model, (0,) * 8 + (1,), 8, 8, vendor=vendor, resource_name=resource)
    (pool,) = convert.capacity_from_pb(convert.capacity_to_pb(ClusterCapacity(accelerator_pools=(sent,)))) \
        .accelerator_pools
    return pool


def _job(alternative: str):  # type: ignore[no-untyped-def]
    """A training job of one replica as a 0.10.0 job file wrote it."""
    (spec,) = parse_job_documents(
        "apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {name: old}\nspec:\n  kind: training\n"
        f"  replicas: 1\n  resources: {{cpu: 1, memory: 1Gi}}\n  accelerators: [{alternative}]\n"
        "  template: {spec: {containers: [{name: t, image: busybox}]}}\n")
    return spec


GENERIC = [("MLU", "MLU370-X8", "cambricon", "cambricon.com/mlu"), ("DCU", "DCU-K100_AI", "hygon", "hygon.com/dcu"),
           ("Gaudi", "Gaudi3", "intel", "habana.ai/gaudi"), ("AMD-GPU", "AMD-Instinct-MI300X", "amd", "amd.com/gpu")]


@pytest.mark.parametrize(("word", "model", "vendor", "resource"), GENERIC, ids=[g[0] for g in GENERIC])
def test_a_job_naming_the_vendors_old_pool_name_runs_on_its_labelled_pool_and_no_other_vendors(
        word: str, model: str, vendor: str, resource: str) -> None:
    spec = _job(f"{{model: {word}, count: 8}}")
    assert spec.accelerators[0].model == word  # kept as written: get job shows what the user asked
    nv = cluster("nv", "east", _wire(H100, "nvidia", "nvidia.com/gpu"))  # free, first by name: must not be taken
    other = cluster("vx", "west", _wire(model, vendor, resource))
    (decision,) = Scheduler().schedule(Snapshot.of([nv, other]), [request(spec)]).decisions
    (a,) = decision.assignments
    assert (a.cluster, a.accelerator_model, a.accelerator_vendor, a.accelerator_resource) == \
        ("vx", model, vendor, resource)


def test_a_third_party_pool_of_the_generic_name_is_selected_too() -> None:
    """R4: a third-party agent may report a Cambricon pool named `MLU` (a pool of unknown model)."""
    pool = _wire("MLU", "cambricon", "cambricon.com/mlu")
    assert (pool.vendor, pool.memory_mib) == ("cambricon", 0)
    (decision,) = Scheduler().schedule(Snapshot.of([cluster("c", "r", pool)]),
                                       [request(_job("{model: MLU, count: 8}"))]).decisions
    assert decision.assignments[0].accelerator_model == "MLU"


def test_a_memory_ask_with_the_generic_name_takes_the_models_memory() -> None:
    spec = _job("{model: DCU, minMemoryMiB: 65536, count: 8}")
    z100 = cluster("z", "east", _wire("DCU-Z100", "hygon", "hygon.com/dcu"))
    k100 = cluster("k", "west", _wire("DCU-K100_AI", "hygon", "hygon.com/dcu"))
    (decision,) = Scheduler().schedule(Snapshot.of([z100, k100]), [request(spec)]).decisions
    assert decision.assignments[0].cluster == "k"


def test_the_federator_knows_the_generic_name_and_warns_nothing_when_a_member_has_the_vendor() -> None:
    fleet = FleetModels()
    fleet.reported("cx", ClusterCapacity(accelerator_pools=(_wire("MLU370-X8", "cambricon", "cambricon.com/mlu"),)))
    spec = _job("{model: MLU, count: 8}")
    assert fleet.unknown(spec) == ""
    assert not [w for w in fleet.warnings(spec) if "no member cluster has" in w]
    spec = replace(spec, accelerators=(replace(spec.accelerators[0], model="Gaudi"),))
    assert any("no member cluster has Gaudi" in w for w in fleet.warnings(spec))  # only cambricon here


def test_the_generic_names_are_the_vendors_default_models_and_not_huaweis_per_resource_ones() -> None:
    cat = builtin_catalog()
    assert {v: cat.generic_model(v) for v in cat.vendor_names} == {
        "nvidia": "", "amd": "AMD-GPU", "huawei": "", "cambricon": "MLU", "hygon": "DCU", "intel": "Gaudi"}
    assert cat.describe_model("MLU590", "cambricon").family == "MLU"
    assert cat.describe_model("Ascend910B3", "huawei").family == "Ascend910B"  # the catalog's own family kept
    assert cat.placeholder_models() == frozenset({"unknown", "ascend910", "ascend310"})


@pytest.mark.parametrize(("word", "vendor", "resource", "model"), [
    ("Ascend910", "huawei", "huawei.com/Ascend910", "'Ascend910A'"),
    ("Ascend310", "huawei", "huawei.com/Ascend310", "a model"),
    ("unknown", "nvidia", "nvidia.com/gpu", "'NVIDIA-H100-80GB-HBM3'"),
])
def test_a_name_still_refused_advises_its_own_vendors_models_and_vendor(word: str, vendor: str, resource: str,
                                                                        model: str) -> None:
    """R4: the refusal of `MLU` told a Cambricon user to name 'H100', or leave the model out (any vendor)."""
    with pytest.raises(JobFileError) as err:
        _job(f"{{model: {word}, count: 8}}")
    said = str(err.value)
    assert f"it is what {vendor} devices ({resource})" in said and model in said
    assert f"{{vendor: {vendor}, count: N}}" in said and "'H100'" not in said


def test_a_generic_name_with_another_vendor_is_refused_naming_the_field() -> None:
    with pytest.raises(JobFileError, match=r"accelerators\[0\]\.vendor: MLU names any cambricon model, not hygon"):
        _job("{model: MLU, vendor: hygon, count: 8}")
    _job("{model: MLU, vendor: cambricon, count: 8}")


def test_a_quota_on_the_generic_name_is_valid_and_caps_the_vendors_labelled_pools() -> None:
    """A 0.10.0 policy's quota on `MLU` capped the Cambricon pools (all named MLU); it must not cap nothing now."""
    from federator.catalog.model_names import quota_model_problem
    from federator.model import JobId, Resources
    from federator.scheduler import SchedulerConfig
    from federator.scheduler.config import QueueConfig, Quota
    from federator.scheduler.framework import Allocation

    assert quota_model_problem("MLU") is None
    mlu = cluster("cx", "west", _wire("MLU370-X8", "cambricon", "cambricon.com/mlu"))
    config = SchedulerConfig(queues={"default": QueueConfig(quota=Quota(accelerator_milli={"MLU": 8000}))})
    held = Allocation(JobId("running"), "default", 0, False, "cx", "MLU370-X8", 1, Resources(1000, 2**30, 8000))
    result = Scheduler(config).schedule(Snapshot.of([mlu]), [request(_job("{model: MLU370-X8, count: 8}"))],
                                        running=[held])
    assert not result.decisions
    assert "quota of queue default on MLU: 8 accelerators, too few left" in result.pending[JobId("old")].message


def test_a_job_0_10_0_stored_with_model_mlu_runs_after_the_upgrade_on_the_labelled_pool(tmp_path: Path) -> None:
    """R8 whole: the job as 0.10.0 kept it in --db, a 0.11.0 federator started on that file, the member's agent
    reporting the labelled pool over the wire; and a tenant's Submit of the same 0.10.0 file over gRPC."""
    from federator.model import JobPhase
    from federator.server.federator import Federator
    from federator.store import SqliteJobStore

    db = tmp_path / "federator.db"
    store = SqliteJobStore(db)
    old = Federator(store=store)
    stored = old.submit(_job("{model: MLU370-X8, count: 8}"))
    # What 0.10.0 stored: its pools were named MLU, and so were its jobs' models (Submit refuses nothing of it now,
    # but the stored form is written directly so that the test holds whatever Submit does).
    stored.spec = replace(stored.spec, accelerators=(replace(stored.spec.accelerators[0], model="MLU"),))
    store.put([stored])
    store.close()

    store = SqliteJobStore(db)
    fed = Federator(store=store)
    (job,) = fed.jobs.values()
    assert job.spec.accelerators[0].model == "MLU" and job.phase is JobPhase.PENDING
    rec = fed.connect(cluster="cx", region="west", labels={})
    pools = (_wire(H100, "nvidia", "nvidia.com/gpu"), _wire("MLU370-X8", "cambricon", "cambricon.com/mlu"))
    fed.report(rec, replace(cluster("cx", "west").capacity, accelerator_pools=pools))
    fed.schedule_once()
    (placement,) = job.placements
    assert (placement.cluster, placement.accelerator_model, placement.accelerator_vendor) == \
        ("cx", "MLU370-X8", "cambricon")

    async def resubmit() -> jobs_pb2.SubmitResponse:
        async with job_api(fed) as stub:
            spec = replace(_job("{model: MLU, count: 8}"), name="again")
            return await stub.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec)))

    got = asyncio.run(resubmit())
    assert got.job.spec.accelerators[0].model == "MLU"
    assert not [w for w in got.warnings if "MLU" in w]
    store.close()
