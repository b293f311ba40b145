"""Kubernetes mode: one `kubectl delete` of a FederatedJob sends each placement's cancel once.

Every event of a deleting object (the deletionTimestamp, each status write of the cancel, the finalizer's removal,
DELETED) reconciles it and cancelled its job again; for a job that had ended (its workloads stay on the member
until the object goes) each sent the member a Cancel of every placement again: harmless, since a cancel is
idempotent, but 3 to 8 orders on the member's stream and in its log for one deletion (vendqa61 V8's other half).
Now once per placement until the object is gone or the federator restarts."""

from __future__ import annotations

import asyncio

import pytest

from federator.model import JobPhase
from federator.server.clusters import ClusterRecord
from federator.server.orders import CancelOrder, Order

from kube_fakes import GANG, HostApi, controller, kubectl_delete, placed_on_member_a, room


def taken(rec: ClusterRecord) -> list[Order]:
    """The orders waiting in the cluster's outbox, taken as its agent's stream takes them."""
    out = []
    while not rec.outbox.empty():
        order = rec.outbox.get_nowait()
        assert order is not None
        out.append(order)
    return out


@pytest.mark.parametrize("finished", [False, True], ids=["running", "finished"])
def test_a_deleted_federatedjob_cancels_each_placement_once_however_many_events(finished: bool) -> None:
    async def main() -> None:
        api = HostApi()
        async with controller(api) as (fed, ctl):
            rec, pid = await placed_on_member_a(api, fed, ctl, "amdqb", GANG, room())
            if finished:
                fed.job_update(rec, pid, JobPhase.SUCCEEDED, "done")
            taken(rec)  # the Launch: what went before the deletion
            sent: list[Order] = []
            # the agent's stream takes each order as it comes (a waiting one would be coalesced)
            await kubectl_delete(api, ctl, "amdqb", each=lambda: sent.extend(taken(rec)))
            cancels = [o for o in sent if isinstance(o, CancelOrder) and o.placement_id == pid]
            assert len(cancels) == 1, sent

    asyncio.run(main())
