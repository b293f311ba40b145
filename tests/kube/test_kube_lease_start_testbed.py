"""A new leader renews its Lease while it starts, on a real API server (backends/kube/host.py).

It renewed only once `KubeMode.start` had listed the Queues, FederatedJobs and MemberClusters, after the jobs were
loaded: a start longer than --renew-deadline made the new leader step down the moment it had started, and each
replica after it in turn with a big store (found by test_kube_reservation_handover_testbed.py on a loaded machine:
3 s of start at --renew-deadline 3). Here the start between `prepare` (the Lease taken) and `start` is a wait past
the renew deadline, as a slow load is; the Lease must have been renewed meanwhile, and the replica still lead.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from federator.backends.kube.api import LEASES, KubeApi
from federator.backends.kube.host import KubeMode
from federator.backends.kube.options import KubeOptions
from federator.server.federator import Federator

from kube_support import host_bed

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "lease-start"
host = host_bed(NAMESPACE)
RENEW_DEADLINE = 4.0


def spec(api: KubeApi) -> dict[str, Any]:
    return dict(api.get(LEASES, "federator", NAMESPACE).get("spec") or {})


def test_a_new_leader_renews_its_lease_while_it_starts(host: Any) -> None:
    async def main() -> None:
        api = KubeApi.connect(host.host.kubeconfig)
        opts = KubeOptions(kubeconfig=host.host.kubeconfig, namespace=NAMESPACE, lease_namespace=NAMESPACE,
                           identity="starting", lease_duration=6.0, renew_deadline=RENEW_DEADLINE, retry_period=0.5)
        mode = await KubeMode.prepare(opts)
        assert mode.elector is not None and mode.elector.leading
        taken = await asyncio.to_thread(spec, api)
        assert taken["holderIdentity"] == "starting"
        await asyncio.sleep(RENEW_DEADLINE + 1)  # the jobs loading, the listings: a start past the renew deadline
        now = await asyncio.to_thread(spec, api)
        assert now["holderIdentity"] == "starting" and now["renewTime"] != taken["renewTime"]
        assert mode.elector.leading and mode.elector.time_left() > 0  # it may act on: it has renewed meanwhile
        await mode.stop()  # a clean stop still releases it
        assert not (await asyncio.to_thread(spec, api)).get("holderIdentity")

    asyncio.run(main())


def test_a_lease_lost_while_it_starts_stops_it_once_started(host: Any) -> None:
    """Another holder took the Lease while the replica started (say its renewals could not reach the API server):
    the renewals end, and `start` hands the loss on at once, as it does one that comes later (the process exits for
    its supervisor to restart it as a standby); its stop does not release a Lease it no longer holds."""
    async def main() -> None:
        api = KubeApi.connect(host.host.kubeconfig)
        opts = KubeOptions(kubeconfig=host.host.kubeconfig, namespace=NAMESPACE, lease_namespace=NAMESPACE,
                           identity="starting", lease_duration=6.0, renew_deadline=RENEW_DEADLINE, retry_period=0.5)
        mode = await KubeMode.prepare(opts)
        assert mode.elector is not None
        lease = await asyncio.to_thread(api.get, LEASES, "federator", NAMESPACE)
        lease["spec"]["holderIdentity"] = "other"
        await asyncio.to_thread(api.replace, LEASES, "federator", lease, NAMESPACE)
        for _ in range(100):  # its next renewal finds the other holder
            if not mode.elector.leading:
                break
            await asyncio.sleep(0.1)
        assert not mode.elector.leading
        lost: list[str] = []
        fed = Federator(store=mode.store)
        await mode.start(fed, on_lost=lambda: lost.append("lost"))
        await asyncio.sleep(0)  # the callback of a task done already comes with the loop's next turn
        assert lost == ["lost"] and mode.lost
        await mode.stop()
        mode.store.close()
        assert (await asyncio.to_thread(spec, api))["holderIdentity"] == "other"

    asyncio.run(main())
