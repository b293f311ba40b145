"""Kubernetes mode: one `kubectl delete` of a FederatedJob sends each placement's cancel once.

Every event of a deleting object (the deletionTimestamp, each status write of the cancel, the finalizer's removal,
DELETED) reconciles it and cancelled its job again; for a job that had ended (its workloads stay on the member
until the object goes) each sent the member a Cancel of every placement again: harmless, since a cancel is
idempotent, but 3 to 8 orders on the member's stream and in its log for one deletion (vendqa61 V8's other half).
Now once per placement until the object is gone or the federator restarts."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace

import pytest

from federator.model import ClusterCapacity, JobPhase
from federator.server.clusters import ClusterRecord
from federator.server.orders import CancelOrder, Order

from builders import cluster, pool
from kube_fakes import HostApi, controller, federated_job

H100 = "NVIDIA-H100-80GB-HBM3"
GANG = {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 8}}


def taken(rec: ClusterRecord) -> list[Order]:
    """The orders waiting in the cluster's outbox, taken as its agent's stream takes them."""
    out = []
    while not rec.outbox.empty():
        order = rec.outbox.get_nowait()
        assert order is not None
        out.append(order)
    return out


def _room(name: str) -> ClusterCapacity:
    return replace(cluster(name, "east", pool(H100, nodes=2, free=8)).capacity, placement_ids=frozenset())


@pytest.mark.parametrize("finished", [False, True], ids=["running", "finished"])
def test_a_deleted_federatedjob_cancels_each_placement_once_however_many_events(finished: bool) -> None:
    async def main() -> None:
        api = HostApi()
        async with controller(api) as (fed, ctl):
            await ctl.adopt_members()
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, _room("member-a"))
            await ctl.write_members()
            await ctl.reconcile("ADDED", federated_job(api, "amdqb", GANG))
            fed.schedule_once()
            (p,) = fed.get("amdqb").placements
            if finished:
                fed.job_update(rec, p.placement_id, JobPhase.SUCCEEDED, "done")
            taken(rec)  # the Launch: what went before the deletion
            obj = api.objects[("research", "amdqb")]
            obj["metadata"]["deletionTimestamp"] = "2026-12-07T16:10:25Z"  # kubectl delete fj amdqb
            sent = []
            for _ in range(3):  # the deletionTimestamp, then the cancel's status writes: each a MODIFIED event
                await ctl.reconcile("MODIFIED", copy.deepcopy(obj))
                sent += taken(rec)  # the agent's stream takes each as it comes (a waiting one would be coalesced)
            await ctl.reconcile("DELETED", api.objects.pop(("research", "amdqb")))
            sent += taken(rec)
            cancels = [o for o in sent if isinstance(o, CancelOrder) and o.placement_id == p.placement_id]
            assert len(cancels) == 1, sent

    asyncio.run(main())
