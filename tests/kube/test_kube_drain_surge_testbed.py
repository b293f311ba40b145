"""A drain's own surge bound on a real API server: `federator drain --surge-seconds` is kept in the MemberCluster's
spec.drainSurgeSeconds (the CRD's structural schema lists it, else it would be pruned), read back after a restart,
and the CRD refuses a bound out of range written by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from federator.backends.kube.cordons import KubeCordonStore
from federator.model.cordon import SURGE_SECONDS, Drain

from kube_support import Testbed, host_alone, in_process

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "drain-surge"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with host_alone(tmp_path_factory.mktemp("drain-surge-bed"), NAMESPACE) as bed:
        yield bed


def test_a_drains_surge_bound_is_kept_in_the_membercluster_and_bounded_by_the_crd(host: Testbed) -> None:
    async def main() -> None:
        with in_process(host, NAMESPACE) as here:
            fed, ctl = here.fed, here.ctl
            here.join("east-1")
            here.join("west-1")
            await ctl.write_members()

            drain = Drain("admin", 1_700_000_000.0, "hardware swap", 1800.0)
            assert (await fed.cordons.drain("east-1", drain))[0]
            shown = host.kubectl("host", "get", "mc", "east-1", "-o",
                                 "jsonpath={.spec.drain} {.spec.drainSurgeSeconds}").stdout
            assert shown == "true 1800"  # kept: the schema lists the field
            assert (await fed.cordons.drain("west-1", Drain("admin", 1_700_000_000.0)))[0]
            assert "drainSurgeSeconds" not in host.kubectl("host", "get", "mc", "west-1", "-o",
                                                           "jsonpath={.spec}").stdout  # the default is not written
            await ctl.read_cordons(every=0)
            assert fed.cordons.draining() == {"east-1": drain, "west-1": Drain("admin", 1_700_000_000.0)}
            assert KubeCordonStore(here.api).load()["east-1"].drain == drain  # a restart reads it back
            assert fed.drains.surges.bound(fed.cordons.draining()["west-1"]) == SURGE_SECONDS

            refused = host.kubectl("host", "patch", "mc", "west-1", "--type", "merge",
                                   "-p", '{"spec":{"drainSurgeSeconds":100000}}', check=False)
            assert refused.returncode != 0 and "spec.drainSurgeSeconds" in refused.stderr
            host.kubectl("host", "patch", "mc", "west-1", "--type", "merge", "-p", '{"spec":{"drainSurgeSeconds":60}}')
            await ctl.read_cordons(every=0)
            assert fed.cordons.draining()["west-1"].surge_seconds == 60.0  # kubectl's bound is read as federator's

    asyncio.run(main())
