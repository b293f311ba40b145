"""A Kubernetes-mode restart keeps the clocks of the gangs' reservations, in their FederatedJob status, on a real
API server.

The standalone store keeps them in its SQLite file (store/reservation_clocks.py;
tests/server/test_reservation_clocks_restart.py). In Kubernetes mode they were memory only, so each restart or new
leader gave a reserving gang a new reservations.maxHoldSeconds and a resting gang its room back at once. Now they
are `status.reservation` of the gang's FederatedJob (backends/kube/reservation_clocks.py): buffered by the cycle,
written by the controller's MemberCluster loop, read back by the next federator from the listing it loads the jobs
from. Here the status is the
one the real kube-apiserver stored through the chart's CRD (a field the schema lacks is pruned without a word), and
the second federator is a new one on the same objects, as after a restart or a change of leader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.backends.kube.api import FEDERATED_JOBS, KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.reservation_clocks import KubeReservationClockStore
from federator.backends.kube.resources import timestamp
from federator.backends.kube.store import KubeJobStore
from federator.model import ClusterCapacity, Job, JobPhase, ReasonCode
from federator.scheduler import Scheduler, parse_policy
from federator.server.federator import Federator

from builders import job, pool
from kube_support import Testbed, host_alone, service_account_kubeconfig

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "reservation-clocks"
H100 = "NVIDIA-H100-80GB-HBM3"
POLICY = "reservations: {afterSeconds: 600, maxReservations: 2, maxHoldSeconds: 1000}"
T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """A host control plane alone, with the chart's CRDs."""
    with host_alone(tmp_path_factory.mktemp("reservation-clocks-bed"), NAMESPACE) as bed:
        yield bed


def capacity() -> ClusterCapacity:
    """east-1: one node with 5 of 8 H100 free (the gang needs 8) and one full."""
    return ClusterCapacity(accelerator_pools=(pool(H100, nodes=0, extra={5: 1, 0: 1}),), cpu_milli_allocatable=10**6,
                           cpu_milli_free=10**6, memory_bytes_allocatable=2**45, memory_bytes_free=2**45,
                           node_cpu_milli_free_max=10**5, node_memory_bytes_free_max=2**42)


async def start(api: KubeApi, clock: Clock) -> tuple[Federator, FederatedJobController, KubeReservationClockStore]:
    """A federator on the host's FederatedJobs as `serve --kubeconfig` makes one (host.py, app.py): the jobs loaded
    from their status, the clocks' store attached, the controller running; east-1's agent reporting."""
    store = KubeJobStore(api, namespace=NAMESPACE, clock=clock)
    fed = Federator(store=store, scheduler=Scheduler(parse_policy(POLICY)), clock=clock)
    clocks = KubeReservationClockStore(store)
    fed.cycles.reserved.attach(clocks, now=clock())
    ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE, member_interval=0.05, clock=clock)
    await ctl.start()
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, capacity())
    return fed, ctl, clocks


async def stop(fed: Federator, ctl: FederatedJobController) -> None:
    """As a killed federator: nothing flushed on the way out, the next one finds what the controller's loop wrote."""
    await ctl.stop()
    fed.cycles.close()
    fed.store.close()  # type: ignore[attr-defined]


def kept(api: KubeApi, name: str) -> Any:
    return (api.get(FEDERATED_JOBS, name, NAMESPACE).get("status") or {}).get("reservation")


async def until_kept(api: KubeApi, name: str, want: Any) -> None:
    """Wait (real time: the controller's loop writes) until the FederatedJob's status.reservation is `want`."""
    for _ in range(200):
        if await asyncio.to_thread(kept, api, name) == want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"status.reservation of {name}: {kept(api, name)!r}, never {want!r}")


def named(fed: Federator, name: str) -> Job:
    return next(j for j in fed.jobs.values() if j.spec.name == name)


def reserved(fed: Federator, name: str) -> bool:
    j = named(fed, name)
    return j.phase is JobPhase.PENDING and j.pending_reason is not None \
        and j.pending_reason.code is ReasonCode.RESERVED


def test_a_hold_ends_max_hold_seconds_after_it_began_though_the_federator_restarted(host: Testbed) -> None:
    async def main() -> None:
        api = KubeApi.connect(host.host.kubeconfig)
        clock = Clock(T0)
        fed, ctl, clocks = await start(api, clock)
        gang = fed.submit(replace(job("gang", gpus=8, queue="train"), namespace=NAMESPACE))
        clock.now += 601
        fed.submit(replace(job("small", gpus=1, queue="flood"), namespace=NAMESPACE))
        fed.schedule_once()
        assert gang.job_id in fed.cycles.reserved and reserved(fed, "small")
        began = clock.now
        await until_kept(api, "gang", {"cluster": "east-1", "since": timestamp(began), "began": timestamp(began)})
        for _ in range(5):  # cycles that change no clock write nothing: a write per change, not per cycle
            clock.now += 1
            fed.schedule_once()
            await asyncio.sleep(0.1)
        assert (clocks.writes, clocks.due) == (1, 0)
        clock.now += 900 - 5
        await stop(fed, ctl)

        clock.now += 50  # 950 s held: 50 left
        fed, ctl, clocks = await start(api, clock)
        fed.schedule_once()  # chosen again, its clocks those it first had
        (held,) = fed.cycles.reserved.current()
        assert (held.since, held.first_reserved) == (began, began)
        assert reserved(fed, "small")
        clock.now += 60  # 1,010 s since its first reservation: it ends, whatever the restart
        fed.schedule_once()
        fed.schedule_once()
        assert gang.job_id not in fed.cycles.reserved
        assert named(fed, "small").phase is JobPhase.PLACED
        rests = fed.cycles.reserved.resting()[gang.job_id]
        await until_kept(api, "gang", {"restsUntil": timestamp(rests)})  # the reservation's fields gone, not merged
        await stop(fed, ctl)

        clock.now += 100  # a third start, while the gang rests: it rests on
        fed, ctl, clocks = await start(api, clock)
        fed.schedule_once()
        assert gang.job_id not in fed.cycles.reserved
        assert fed.cycles.reserved.resting() == {gang.job_id: pytest.approx(rests, abs=1e-6)}
        await stop(fed, ctl)

    asyncio.run(main())


def _role(status: bool) -> str:
    """The Role of the federator's service account here: FederatedJobs, and their status only with `status`."""
    resources = ["federatedjobs", *(["federatedjobs/status"] if status else [])]
    return yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "clocks-writer", "namespace": NAMESPACE},
        "rules": [{"apiGroups": ["federator.io"], "resources": resources,
                   "verbs": ["get", "list", "watch", "create", "update", "patch"]},
                  {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}]})


def unwritten(fed: Federator) -> float | None:
    return fed.metrics.registry.get_sample_value("federator_reservation_unwritten_clocks")


def test_a_clock_the_host_refuses_is_counted_unwritten_until_a_write_works(host: Testbed, tmp_path: Path) -> None:
    """`federator_reservation_unwritten_clocks` (server/reservations.py): a new reservation's clock stays due
    while the API server refuses its patch (the service account may not write federatedjobs/status, as with the
    RBAC of a chart older than the status field's writes), and the count falls when the write is allowed."""
    host.kubectl("host", "create", "serviceaccount", "clocks-writer", "-n", NAMESPACE)
    host.kubectl("host", "apply", "-f", "-", input=_role(status=False))
    host.kubectl("host", "create", "rolebinding", "clocks-writer", "-n", NAMESPACE, "--role=clocks-writer",
                 f"--serviceaccount={NAMESPACE}:clocks-writer")
    kubeconfig = service_account_kubeconfig(host, "host", "clocks-writer", tmp_path / "sa.kubeconfig",
                                            namespace=NAMESPACE)

    async def main() -> None:
        api = KubeApi.connect(kubeconfig)
        clock = Clock(T0)
        store = KubeJobStore(api, namespace=NAMESPACE, clock=clock)
        fed = Federator(store=store, scheduler=Scheduler(parse_policy(POLICY)), clock=clock)
        clocks = KubeReservationClockStore(store)
        fed.cycles.reserved.attach(clocks, now=clock())  # no controller: this test does what its loop does
        fed.report(fed.connect(cluster="east-1", region="east", labels={}), capacity())
        assert unwritten(fed) == 0.0
        gang = fed.submit(replace(job("refused-gang", gpus=8, queue="train"), namespace=NAMESPACE))
        clock.now += 601
        fed.submit(replace(job("refused-small", gpus=1, queue="flood"), namespace=NAMESPACE))
        fed.schedule_once()
        assert gang.job_id in fed.cycles.reserved
        assert unwritten(fed) == 1.0  # due: the controller's loop writes it within a --report-interval
        for _ in range(200):  # the job store makes the FederatedJob (its status write refused, retried)
            if store.owner_of(gang.job_id) is not None:
                break
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(clocks.flush) == 1  # forbidden: still due
        assert unwritten(fed) == 1.0 and clocks.writes == 0
        assert await asyncio.to_thread(kept, api, "refused-gang") is None

        await asyncio.to_thread(host.kubectl, "host", "apply", "-f", "-", input=_role(status=True))
        for _ in range(200):  # RBAC takes the new rule within moments
            if await asyncio.to_thread(clocks.flush) == 0:
                break
            await asyncio.sleep(0.05)
        assert unwritten(fed) == 0.0 and clocks.writes == 1
        began = timestamp(clock.now)
        assert await asyncio.to_thread(kept, api, "refused-gang") == {"cluster": "east-1", "since": began,
                                                                      "began": began}
        fed.cycles.close()
        store.close()

    asyncio.run(main())
