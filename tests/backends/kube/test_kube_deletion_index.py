"""Kubernetes mode: a deleted FederatedJob's job leaves the placement index at once, earlier placements and all,
without a walk of the index (server/placement_index.py).

Soak S5's Kubernetes twin was fixed by a walk of the whole index, made once the forgotten jobs were 1/64 of it:
until then a deleted job's refused, lost and superseded placements stayed (with 70 live jobs, 69 deletions), and
each walk read every live job's entries on the event loop. The spy (`support.Walked`) counts what a walk reads."""

from __future__ import annotations

import asyncio

from federator.model import JobPhase

from kube_fakes import GANG, HostApi, controller, federated_job, kubectl_delete, room
from support import Walked

SMALL = {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 1}}
MEMBERS = ("member-a", "member-b", "member-c")
LIVE = 70  # more than 64: the old walk waited for 2 forgotten jobs here


def test_a_deleted_federatedjob_takes_its_earlier_placements_out_of_the_index_without_a_walk() -> None:
    async def main() -> None:
        api = HostApi()
        async with controller(api) as (fed, ctl):
            await ctl.adopt_members()
            recs = {name: fed.connect(cluster=name, region="east", labels={}) for name in MEMBERS}
            for name, rec in recs.items():
                fed.report(rec, room(name, nodes=16))
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
            await kubectl_delete(api, ctl, "q-train", modified=1)
            assert job.job_id not in fed.jobs
            assert spy.walked == 0  # read before the check below walks it
            assert set(fed.placement_index) == live  # its two earlier placements too, at once

    asyncio.run(main())
