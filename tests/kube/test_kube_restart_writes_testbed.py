"""What a new leader writes of the FederatedJobs it loads, and what it keeps of the ones deleted, on a real API server.

- QA kubescaleqa62 H1: a restart (SIGKILL, a failover) wrote the status of nearly every FederatedJob back although
  nothing had changed (~1,000 PATCHes at 1,300 objects), and new FederatedJobs waited behind those writes for up to
  78 s. Found: each running job's message was restated "Partitioned since ... (its agent has not reported since
  this federator started)" at the first turn, before its agent was back, then restated back a few seconds later; and
  a write of a job as it was loaded was sent although the object said that already. A new leader whose agent
  re-syncs within the start's wait, and whose first cycles tell the pending jobs their reasons again, now sends no
  status PATCH for a job whose object says that already.
- The writes left after that fix (kubescaleqa62 H1, M2, reasons62): a waiting job's reason counted the jobs of its
  queue that go before its owner's exactly, so one more arriving ahead reworded (and a restart's first cycle wrote)
  every waiting job behind it. Told as a range, the words, and so the object, stay as they were.
- M1: the store kept each job's owner, uid, conditions, counts and held flag for the leader's life; a deleted
  FederatedJob's job now takes them with it.

The federator runs in this process (store, controller with its informer, the scheduler's cycle), as a restart
starts them; its agents are played by `connect`/`report`/`job_update`, as the neighbours' restart tests do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from federator.backends.kube.api import FEDERATED_JOBS, KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.store import KubeJobStore
from federator.model import JobPhase
from federator.server.federator import Federator
from federator.server.settle import DEFAULT_SETTLE_SECONDS

from builders import cluster, pool
from kube_support import H100, Testbed, fj_yaml, host_alone
from support import accepted, until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "restart-writes"
MEMBER = "member-a"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with host_alone(tmp_path_factory.mktemp("restart-writes-bed"), NAMESPACE) as bed:
        yield bed


class CountingApi(KubeApi):
    """The real client, counting the status PATCHes of FederatedJobs it sends."""

    status_patches = 0
    patched: list[str]

    def patch(self, res: Any, name: str, body: Any, namespace: str | None = None, **kw: Any) -> Any:
        if res == FEDERATED_JOBS and kw.get("subresource") == "status":
            self.status_patches += 1
            self.patched.append(name)
        return super().patch(res, name, body, namespace, **kw)


def api_of(host: Testbed) -> CountingApi:
    api = KubeApi.connect(host.host.kubeconfig)
    api.__class__ = CountingApi
    api.patched = []  # type: ignore[attr-defined]
    return api  # type: ignore[return-value]


async def leader(api: KubeApi) -> tuple[KubeJobStore, Federator, FederatedJobController]:
    """A federator as a new leader starts: loads the jobs from the objects, watches them, and its member's agent
    re-syncs: the placements it runs, running still (JobUpdates), then its report, which holds them."""
    store = KubeJobStore(api, namespace=NAMESPACE)
    fed = Federator(store=store, settle_seconds=DEFAULT_SETTLE_SECONDS)  # as `federator serve` starts
    ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE)
    await ctl.start()
    fed.notes.refresh()  # the loop's first turn, before the agent is back: its cluster is Partitioned
    rec = fed.connect(cluster=MEMBER, region="east", labels={})
    held = [p for j in fed.jobs.values() for p in j.placements if p.phase.is_active]
    for p in held:
        fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
    used = sum(j.spec.resources.accelerator_milli // 1000 for j in fed.jobs.values() if j.placements)
    capacity = cluster(MEMBER, "east", pool(H100, nodes=1, free=8 - used)).capacity
    fed.report(rec, replace(capacity, placement_ids=frozenset(p.placement_id for p in held)))
    fed.notes.refresh()  # the next turn: Ready again
    return store, fed, ctl


def test_a_new_leader_writes_no_status_of_the_stable_jobs_it_loads(host: Testbed) -> None:
    names = [f"job-{i}" for i in range(8)]
    gpus = {"job-0": 4, "job-1": 4}  # 8 H100s: some run, the rest wait for room

    async def main() -> None:
        store, fed, ctl = await leader(api_of(host))
        try:
            # One by one, so the queue's order is the names'. Any order holds now: a 4 accepted after two 2s was
            # told "the most free on one node is 2" at its turn, room the cycle then gave to a 2 behind it, and the
            # restart's first cycle reworded it (1 CI run in 6); a reason names no free room on a node any more
            # (scheduler/node_size.py, tests/server/test_stable_reasons.py).
            for name in names:
                doc = fj_yaml(name, NAMESPACE, acceleratorModels=["H100"],
                              resources={"cpu": "1", "nvidia.com/gpu": gpus.get(name, 2)})
                host.kubectl("host", "apply", "-f", "-", input=doc)
                await accepted(fed, NAMESPACE, name)
            fed.schedule_once()
            rec = fed.clusters[MEMBER]
            running = [j for j in fed.jobs.values() if j.placements]
            assert running and len(running) < len(names)  # some run, some wait
            for job in running:
                fed.job_update(rec, job.placements[0].placement_id, JobPhase.RUNNING, "")
            fed.schedule_once()
            await asyncio.to_thread(fed.journal.drain)
        finally:
            await ctl.stop()
            store.close()

        api = api_of(host)  # the restart: a new process, its own client
        store, fed, ctl = await leader(api)
        try:
            assert len(fed.jobs) == len(names)
            rec = fed.clusters[MEMBER]
            fed.schedule_once()  # every pending job's reason told again
            fed.schedule_once()
            await asyncio.to_thread(fed.journal.drain)
            assert api.status_patches == 0, f"{api.status_patches} status writes of {len(names)} stable jobs"
            # A write of a job as it was loaded, asked by any path (here the store's own), says what its object
            # says already: not sent either.
            await asyncio.to_thread(store.put, list(fed.jobs.values()))
            assert api.status_patches == 0, f"{api.status_patches} status writes of {len(names)} jobs as loaded"
            assert store.unchanged == len(names)

            # What does change is still written: a job that ends, and a new FederatedJob admitted.
            ended = next(j for j in fed.jobs.values() if j.placements)
            fed.job_update(rec, ended.placements[0].placement_id, JobPhase.SUCCEEDED, "")
            host.kubectl("host", "apply", "-f", "-", input=fj_yaml("job-new", NAMESPACE, acceleratorModels=["H100"]))
            await accepted(fed, NAMESPACE, "job-new")
            await asyncio.to_thread(fed.journal.drain)
            phase = (api.get(FEDERATED_JOBS, ended.spec.name, NAMESPACE).get("status") or {}).get("phase")
            assert phase == JobPhase.SUCCEEDED.value
            assert (api.get(FEDERATED_JOBS, "job-new", NAMESPACE).get("status") or {}).get("jobId")
        finally:
            await ctl.stop()
            store.close()

    asyncio.run(main())


def test_a_deleted_federatedjobs_job_leaves_nothing_in_the_store(host: Testbed) -> None:
    names = [f"gone-{i}" for i in range(4)]
    for left in KubeApi.connect(host.host.kubeconfig).list(FEDERATED_JOBS, NAMESPACE).get("items") or []:
        host.kubectl("host", "delete", "federatedjob", "-n", NAMESPACE, left["metadata"]["name"], "--wait=false")

    async def main() -> None:
        api = api_of(host)
        store, fed, ctl = await leader(api)
        try:
            for name in names:
                host.kubectl("host", "apply", "-f", "-", input=fj_yaml(name, NAMESPACE, acceleratorModels=["H100"]))
            await accepted(fed, NAMESPACE, *names)
            fed.schedule_once()
            ids = {j.job_id for n in names for j in fed.jobs.named(n)}
            assert len(ids) == len(names)
            await asyncio.to_thread(fed.journal.drain)
            for name in names:
                host.kubectl("host", "delete", "federatedjob", "-n", NAMESPACE, name, "--wait=false")
            await until(lambda: not ids & set(fed.jobs), timeout=60)
            await until(lambda: not api.list(FEDERATED_JOBS, NAMESPACE).get("items"), timeout=60)
            kept = {what: sorted(set(per_job) & ids) for what, per_job in (
                ("owners", store._owners), ("conditions", store._conditions), ("replicas", store._replicas),
                ("job replicas", store._job_replicas), ("spec_held", store.spec_held), ("seen", store._seen),
                ("as loaded", store._loaded), ("ignoring", store.ignoring))}
            assert kept == {what: [] for what in kept}
            assert not ids & set(store._by_uid.values())
        finally:
            await ctl.stop()
            store.close()

    asyncio.run(main())


def _clear(host: Testbed) -> None:
    for left in KubeApi.connect(host.host.kubeconfig).list(FEDERATED_JOBS, NAMESPACE).get("items") or []:
        host.kubectl("host", "delete", "federatedjob", "-n", NAMESPACE, left["metadata"]["name"], "--wait=false")


def test_a_job_arriving_ahead_of_waiting_ones_rewrites_none_of_their_statuses_at_a_restart(host: Testbed) -> None:
    """Twelve jobs of priority 5 and two of 0 in one queue, one node of 8 H100s: one runs, the two low ones read that
    11 waiting jobs go before them. A 13th of priority 5 arrives, then a restart's first cycles tell every waiting
    job its reason again, counting it: 12 go before them now, and their objects are not written."""
    _clear(host)
    high, low = [f"high-{i}" for i in range(12)], ["low-0", "low-1"]

    def doc(name: str) -> str:
        return fj_yaml(name, NAMESPACE, acceleratorModels=["H100"], priority=5 if name.startswith("high") else 0,
                       resources={"cpu": "1", "nvidia.com/gpu": 8})

    def said(api: KubeApi, name: str) -> str:
        return str(((api.get(FEDERATED_JOBS, name, NAMESPACE).get("status") or {}).get("pendingReason")
                    or {}).get("message", ""))

    async def main() -> None:
        await until(lambda: not KubeApi.connect(host.host.kubeconfig).list(FEDERATED_JOBS, NAMESPACE).get("items"),
                    timeout=60)
        for name in [*high, *low]:
            host.kubectl("host", "apply", "-f", "-", input=doc(name))
        store, fed, ctl = await leader(api_of(host))
        try:
            await accepted(fed, NAMESPACE, *high, *low)
            fed.schedule_once()
            rec = fed.clusters[MEMBER]
            for job in [j for j in fed.jobs.values() if j.placements]:
                fed.job_update(rec, job.placements[0].placement_id, JobPhase.RUNNING, "")
            fed.schedule_once()
            await asyncio.to_thread(fed.journal.drain)
            host.kubectl("host", "apply", "-f", "-", input=doc("high-late"))
            await accepted(fed, NAMESPACE, "high-late")
            fed.schedule_once()
            await asyncio.to_thread(fed.journal.drain)
            before = {name: said(store.api, name) for name in low}
        finally:
            await ctl.stop()
            store.close()
        assert all(" go before its owner's: 10 to 19 of higher priority" in m for m in before.values()), before

        api = api_of(host)
        store, fed, ctl = await leader(api)
        try:
            fed.schedule_once()  # every waiting job's reason told again, high-late counted among those before
            fed.schedule_once()
            await asyncio.to_thread(fed.journal.drain)
            assert all(j.job_id in fed.cycles.parked for n in low for j in fed.jobs.named(n))  # told by a cycle
            assert not [n for n in api.patched if n in low], api.patched
            assert {name: said(api, name) for name in low} == before
        finally:
            await ctl.stop()
            store.close()

    asyncio.run(main())
