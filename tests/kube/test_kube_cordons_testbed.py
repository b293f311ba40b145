"""Cordons on a real API server (the host of the test bed): the CRD keeps the fields (a structural schema prunes
what it does not list), `kubectl patch mc` is read back, `federator cordon` is written where kubectl shows it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from federator.backends.kube.cordons import BY_HAND
from federator.jobfile import parse_job
from federator.model import ClusterState, JobPhase
from federator.model.cordon import Cordon

from kube_support import Testbed, host_alone, in_process

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "cordons"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with host_alone(tmp_path_factory.mktemp("cordon-bed"), NAMESPACE) as bed:
        yield bed


def test_kubectl_and_federator_cordon_agree_on_the_membercluster(host: Testbed) -> None:
    async def main() -> None:
        with in_process(host, NAMESPACE) as here:
            fed, ctl = here.fed, here.ctl
            here.join("east-1")
            await ctl.write_members()

            host.kubectl("host", "patch", "mc", "east-1", "--type", "merge",
                         "-p", '{"spec":{"cordoned":true,"cordonReason":"rack 7 down"}}')
            await ctl.read_cordons(every=0)
            assert fed.cordons.get("east-1") is not None
            assert fed.cordons.get("east-1").reason == "rack 7 down"  # type: ignore[union-attr]
            assert fed.cordons.get("east-1").by == BY_HAND  # type: ignore[union-attr]
            assert [c.state for c in fed.cycles.snapshot().clusters] == [ClusterState.CORDONED]

            await ctl.write_members()  # the federator's own writes leave the cordon alone
            host.kubectl("host", "patch", "mc", "east-1", "--type", "merge", "-p", '{"spec":{"cordoned":null}}')
            await ctl.read_cordons(every=0)
            assert fed.cordons.get("east-1") is None

            assert await fed.cordons.cordon("east-1", Cordon("admin", 1_700_000_000.0, "driver upgrade"))
            shown = host.kubectl("host", "get", "mc", "east-1", "-o",
                                 "jsonpath={.spec.cordoned} {.spec.cordonedBy} {.spec.cordonedAt}").stdout
            assert shown == "true admin 2023-11-14T22:13:20Z"
            assert "true" in host.kubectl("host", "get", "mc", "east-1").stdout.splitlines()[1].split()
            await ctl.read_cordons(every=0)
            assert fed.cordons.get("east-1") == Cordon("admin", 1_700_000_000.0, "driver upgrade")
            assert await fed.cordons.uncordon("east-1") is not None
            assert host.kubectl("host", "get", "mc", "east-1", "-o", "jsonpath={.spec}").stdout.count("cordon") == 0

            job = fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                        "metadata": {"name": "after", "namespace": NAMESPACE},
                                        "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 1}}}))
            fed.schedule_once()
            assert job.phase is JobPhase.PLACED

    asyncio.run(main())



def test_the_crd_keeps_a_maintenance_window_and_federator_reads_it_back(host: Testbed) -> None:
    """spec.cordonFrom and spec.cordonUntil survive the CRD's structural schema (a CRD that pruned them would make
    a window a cordon now, with no end), and the State column says MaintenanceAhead before it begins."""
    async def main() -> None:
        with in_process(host, NAMESPACE) as here:
            fed, ctl = here.fed, here.ctl
            here.join("west-1")
            await ctl.write_members()
            now = fed.clock()
            window = Cordon("admin", 1_700_000_000.0, "switch", window_from=float(int(now) + 3600),
                            window_until=float(int(now) + 7200))
            assert await fed.cordons.cordon("west-1", window)
            await ctl.read_cordons(every=0)
            assert fed.cordons.get("west-1") == window
            assert fed.cordons.ahead() == {"west-1": window.window_from}
            await ctl.write_members()
            state = host.kubectl("host", "get", "mc", "west-1", "-o", "jsonpath={.status.stateSummary}").stdout
            assert state == "Ready,MaintenanceAhead"
            assert await fed.cordons.uncordon("west-1") is not None
            assert host.kubectl("host", "get", "mc", "west-1", "-o", "jsonpath={.spec}").stdout.count("cordon") == 0

    asyncio.run(main())


def test_kubectl_get_mc_shows_a_providers_maintenance_and_a_clamped_report(host: Testbed) -> None:
    """The API server keeps the new status fields (a structural schema prunes what it does not list, without a
    word) and `kubectl get mc` shows them: State as `federator get clusters` says it, Maintenance in -o wide."""
    from federator.server.over_bound import clamped_message

    async def main() -> None:
        with in_process(host, NAMESPACE, cordons=False) as here:
            fed, ctl = here.fed, here.ctl
            rec = here.join("west-1")
            fed.cordons.maintenance.reported("west-1", "driver upgrade", provider="acme", now=1_700_000_000.0)
            rec.over_bound = clamped_message(reported_milli=68_000, bound=64, provider="acme")
            await ctl.write_members()
            shown = host.kubectl("host", "get", "mc", "west-1", "-o", "jsonpath={.status.state} "
                                 "{.status.maintenanceSince} {.status.overBound}").stdout
            assert shown.startswith("Ready 2023-11-14T22:13:20.000000Z capacity.accelerator_pools: 68 accelerators")
            wide = host.kubectl("host", "get", "mc", "west-1", "-o", "wide").stdout.splitlines()
            assert wide[0].split()[:3] == ["NAME", "REGION", "STATE"] and "MAINTENANCE" in wide[0]
            assert wide[1].split()[:3] == ["west-1", "west", "Ready,Cordoned,OverBound"]
            assert "driver upgrade" in wide[1]

            fed.cordons.maintenance.reported("west-1", "", provider="acme", now=1_700_000_100.0)
            rec.over_bound = ""
            await ctl.write_members()
            status = host.kubectl("host", "get", "mc", "west-1", "-o", "jsonpath={.status}").stdout
            assert "maintenance" not in status and "overBound" not in status
            assert host.kubectl("host", "get", "mc", "west-1").stdout.splitlines()[1].split()[2] == "Ready"

    asyncio.run(main())
