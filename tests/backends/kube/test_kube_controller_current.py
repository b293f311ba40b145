"""The FederatedJob controller submits a job with the spec the API server reads now, not the one its watch sent.

Found on the test bed (tests/kube: test_kube_job_events.py after test_kube_federation.py, which applies an older
FederatedJob CRD and then the current one): a watch opened before a CRD change goes on sending objects decoded
with the old schema, pruned of the fields it does not name. A FederatedJob asking for H100 reached the federator
without spec.acceleratorModels and was placed on an A100.
"""

from __future__ import annotations

import asyncio
import copy

from federator.backends.kube.api import FEDERATED_JOBS, key_of
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.resources import FINALIZER
from federator.backends.kube.store import KubeJobStore
from federator.security.limits import Limits
from federator.server.federator import Federator

from kube_fakes import Events, FlakyApi, controller, federated_job


def test_a_new_federatedjob_is_submitted_with_the_spec_the_api_server_holds_now() -> None:
    async def main() -> None:
        api = FlakyApi()
        store = KubeJobStore(api)  # type: ignore[arg-type]
        fed = Federator(store=store)
        ctl = FederatedJobController(fed, api, store)  # type: ignore[arg-type]
        stored = api.create(FEDERATED_JOBS, {
            "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": "pretrain", "finalizers": [FINALIZER]},
            "spec": {"kind": "training", "replicas": 1, "acceleratorModels": ["H100"],
                     "resources": {"nvidia.com/gpu": 8, "cpu": "2"}}}, "research")
        watched = copy.deepcopy(stored)
        del watched["spec"]["acceleratorModels"]  # as a watch on the old CRD's schema sends it
        await ctl.reconcile("ADDED", watched)
        (job,) = fed.jobs.values()
        assert job.spec.accelerator_models == ("H100",)

        gone = copy.deepcopy(stored)
        gone["metadata"].update(name="deleted-since", uid="uid-old")
        await ctl.reconcile("ADDED", gone)  # deleted before its event was handled: nothing submitted
        assert len(fed.jobs) == 1

    asyncio.run(main())


def test_a_federatedjob_met_by_back_pressure_waits_and_is_submitted_once_there_is_room() -> None:
    """A full queue is no verdict on the job: it was marked Failed as if invalid, and never tried again."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api, limits=Limits(max_pending_jobs=1, queue_full_retry_seconds=0.05),
                              workers=True) as (fed, ctl):
            for name in ("first", "second"):
                obj = federated_job(api, name, {"kind": "training", "replicas": 1,
                                                "resources": {"nvidia.com/gpu": 8, "cpu": "2"}})
                ctl.informer.cache[key_of(obj)] = obj
                await ctl.reconcile("ADDED", obj)
            assert [j.spec.name for j in fed.jobs.values()] == ["first"]
            second = api.get(FEDERATED_JOBS, "second", "research")
            assert (second.get("status") or {}).get("phase") != "Failed"  # waiting, not refused
            await asyncio.sleep(0.2)
            assert len(fed.jobs) == 1  # still full: tried again, still waiting
            fed.cancel(next(iter(fed.jobs)))
            for _ in range(50):
                await asyncio.sleep(0.05)
                if len(fed.jobs) == 2:
                    break
            assert sorted(j.spec.name for j in fed.jobs.values()) == ["first", "second"]

    asyncio.run(main())


def test_a_federatedjob_of_a_queue_at_its_cap_waits_while_another_queues_is_submitted() -> None:
    """A queue's cap (maxPendingJobs, --max-pending-jobs-per-queue) is back-pressure like the federator's: the
    FederatedJob waits, told once by a Warning Event QueueFull naming its queue, and is submitted once one of
    its queue's jobs leaves Pending; another queue's FederatedJob goes in meanwhile."""
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, limits=Limits(max_pending_jobs_per_queue=1, queue_full_retry_seconds=0.05),
                              events=events, workers=True) as (fed, ctl):
            for name, queue in (("flood-0", "flood"), ("flood-1", "flood"), ("paper", "research")):
                obj = federated_job(api, name, {"kind": "training", "replicas": 1, "queue": queue,
                                                "resources": {"nvidia.com/gpu": 8, "cpu": "2"}})
                ctl.informer.cache[key_of(obj)] = obj
                await ctl.reconcile("ADDED", obj)
            assert sorted(j.spec.name for j in fed.jobs.values()) == ["flood-0", "paper"]
            waiting = api.get(FEDERATED_JOBS, "flood-1", "research")
            assert (waiting.get("status") or {}).get("phase") != "Failed"  # waiting, not refused
            (told,) = [e for e in events.posted if e.get("reason") == "QueueFull"]
            assert "queue 'flood' is full: 1 of its jobs are pending, its limit is 1" in str(told.get("message"))
            await asyncio.sleep(0.2)
            assert len(fed.jobs) == 2  # tried again, still waiting, told once
            assert len([e for e in events.posted if e.get("reason") == "QueueFull"]) == 1
            fed.cancel(next(j.job_id for j in fed.jobs.values() if j.spec.name == "flood-0"))
            for _ in range(50):
                await asyncio.sleep(0.05)
                if len(fed.jobs) == 3:
                    break
            assert sorted(j.spec.name for j in fed.jobs.values()) == ["flood-0", "flood-1", "paper"]

    asyncio.run(main())


def test_a_namespace_at_its_cap_over_many_queues_waits_while_another_namespaces_federatedjob_is_submitted() -> None:
    """A FederatedJob made with kubectl has no user: its namespace is the owner `--max-pending-jobs-per-user`
    bounds, over every queue it uses (each of them far from its own cap), whatever user its annotations claim.
    Back-pressure, not a verdict: the object waits, told once by a Warning Event QueueFull naming the namespace,
    and is submitted once one of the namespace's jobs leaves Pending; another namespace's goes in meanwhile."""
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, limits=Limits(max_pending_jobs_per_user=2, queue_full_retry_seconds=0.05),
                              events=events, workers=True) as (fed, ctl):
            for name, namespace, queue in (("a-0", "team-a", "q-0"), ("a-1", "team-a", "q-1"),
                                           ("a-2", "team-a", "q-2"), ("b-0", "team-b", "q-2")):
                obj = federated_job(api, name, {"kind": "training", "replicas": 1, "queue": queue,
                                                "resources": {"nvidia.com/gpu": 8, "cpu": "2"}}, namespace=namespace)
                if name == "a-2":  # claims a user: the controller records none, so it is still team-a's
                    obj = api.patch(FEDERATED_JOBS, name, {"metadata": {"annotations": {
                        "federator.io/user": "someone-else"}}}, namespace)
                ctl.informer.cache[key_of(obj)] = obj
                await ctl.reconcile("ADDED", obj)
            assert sorted(j.spec.name for j in fed.jobs.values()) == ["a-0", "a-1", "b-0"]
            waiting = api.get(FEDERATED_JOBS, "a-2", "team-a")
            assert (waiting.get("status") or {}).get("phase") != "Failed"  # waiting, not refused
            (told,) = events.told("QueueFull")
            assert "namespace 'team-a' is at its cap of pending jobs: 2 of its jobs are pending over all queues" in told
            assert "its namespace stands for one" in told
            await asyncio.sleep(0.2)
            assert len(fed.jobs) == 3 and len(events.told("QueueFull")) == 1  # tried again, still waiting, told once
            fed.cancel(next(j.job_id for j in fed.jobs.values() if j.spec.name == "a-0"))
            for _ in range(50):
                await asyncio.sleep(0.05)
                if len(fed.jobs) == 4:
                    break
            assert sorted(j.spec.name for j in fed.jobs.values()) == ["a-0", "a-1", "a-2", "b-0"]

    asyncio.run(main())


def test_a_namespace_past_its_byte_budget_waits_and_a_job_too_big_for_it_is_refused() -> None:
    """Red team F01, Kubernetes mode: a kubectl-made FederatedJob's namespace has the byte budget a user has
    (--max-unfinished-bytes-per-user), as it has the count cap. Past it the object waits (Event QueueFull) and
    goes in once one of the namespace's jobs finishes; one too big for the budget by itself is refused, not
    left waiting forever."""
    pad = "x" * 10_000

    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, limits=Limits(max_unfinished_bytes_per_user=25_000, queue_full_retry_seconds=0.05),
                              events=events, workers=True) as (fed, ctl):
            for name, namespace, size in (("a-0", "team-a", 1), ("a-1", "team-a", 1), ("a-2", "team-a", 1),
                                          ("b-0", "team-b", 1), ("huge", "team-b", 3)):
                obj = federated_job(api, name, {"kind": "training", "replicas": 1,
                                                "resources": {"nvidia.com/gpu": 8, "cpu": "2"}}, namespace=namespace)
                obj = api.patch(FEDERATED_JOBS, name, {"metadata": {"annotations": {"pad": pad * size}}}, namespace)
                ctl.informer.cache[key_of(obj)] = obj
                await ctl.reconcile("ADDED", obj)
            assert sorted(j.spec.name for j in fed.jobs.values()) == ["a-0", "a-1", "b-0"]
            waiting = api.get(FEDERATED_JOBS, "a-2", "team-a")
            assert (waiting.get("status") or {}).get("phase") != "Failed"  # waiting, not refused
            (told,) = events.told("QueueFull")
            assert "namespace 'team-a' is at its byte budget" in told and "--max-unfinished-bytes-per-user" in told
            huge = api.get(FEDERATED_JOBS, "huge", "team-b")
            assert (huge.get("status") or {}).get("phase") == "Failed"
            assert "by itself" in str((huge.get("status") or {}).get("message"))
            fed.cancel(next(j.job_id for j in fed.jobs.values() if j.spec.name == "a-0"))
            for _ in range(50):
                await asyncio.sleep(0.05)
                if len(fed.jobs) == 4:
                    break
            assert sorted(j.spec.name for j in fed.jobs.values()) == ["a-0", "a-1", "a-2", "b-0"]

    asyncio.run(main())
