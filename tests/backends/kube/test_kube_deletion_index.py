"""Kubernetes mode: a deleted FederatedJob's job leaves the placement index at once, earlier placements and all,
without a walk of the index (server/placement_index.py).

Soak S5's Kubernetes twin was fixed by a walk of the whole index, made once the forgotten jobs were 1/64 of it:
until then a deleted job's refused, lost and superseded placements stayed (with 70 live jobs, 69 deletions), and
each walk read every live job's entries on the event loop. The spy (`support.Walked`) counts what a walk reads."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace

from federator.model import ClusterCapacity, JobPhase

from builders import cluster, pool
from kube_fakes import HostApi, controller, federated_job
from support import Walked

H100 = "NVIDIA-H100-80GB-HBM3"
GANG = {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 8}}
SMALL = {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 1}}
MEMBERS = ("member-a", "member-b", "member-c")
LIVE = 70  # more than 64: the old walk waited for 2 forgotten jobs here


def _room(name: str) -> ClusterCapacity:
    return replace(cluster(name, "east", pool(H100, nodes=16, free=8)).capacity, placement_ids=frozenset())


def test_a_deleted_federatedjob_takes_its_earlier_placements_out_of_the_index_without_a_walk() -> None:
    async def main() -> None:
        api = HostApi()
        async with controller(api) as (fed, ctl):
            await ctl.adopt_members()
            recs = {name: fed.connect(cluster=name, region="east", labels={}) for name in MEMBERS}
            for name, rec in recs.items():
                fed.report(rec, _room(name))
            await ctl.write_members()
            await ctl.reconcile("ADDED", federated_job(api, "q-train", GANG))
            attempts: list[str] = []
            for attempt in range(3):  # refused by two members (each then avoided), run to its end on the third
                fed.schedule_once()
                (p,) = fed.get("q-train").placements
                attempts.append(p.placement_id)
                if attempt < 2:
                    fed.refused(recs[p.cluster], p.placement_id, "no room after all")
                else:
                    fed.job_update(recs[p.cluster], p.placement_id, JobPhase.SUCCEEDED, "done")
            job = fed.get("q-train")
            assert job.phase is JobPhase.SUCCEEDED and len(set(attempts)) == 3
            for i in range(LIVE):
                await ctl.reconcile("ADDED", federated_job(api, f"live-{i}", SMALL))
            fed.schedule_once()
            live = {p.placement_id for j in fed.jobs.values() if j is not job for p in j.placements}
            assert len(live) == LIVE
            assert set(fed.placement_index) == live | set(attempts)  # kept while q-train lives (server/orphans.py)

            fed.placement_index._job = spy = Walked(fed.placement_index._job)
            obj = api.objects[("research", "q-train")]
            obj["metadata"]["deletionTimestamp"] = "2026-12-07T08:00:00Z"  # kubectl delete fj q-train
            await ctl.reconcile("MODIFIED", copy.deepcopy(obj))
            gone = api.objects.pop(("research", "q-train"))
            await ctl.reconcile("DELETED", gone)
            assert job.job_id not in fed.jobs
            assert spy.walked == 0  # read before the check below walks it
            assert set(fed.placement_index) == live  # its two earlier placements too, at once

    asyncio.run(main())
