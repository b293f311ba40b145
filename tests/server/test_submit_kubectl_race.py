"""A `kubectl apply` of a FederatedJob while a gRPC Submit of the same name is on its way to the store.

The names are unique on the API server: whichever object is made first holds the name, and the Submit whose
create meets it is refused (NameTaken: ALREADY_EXISTS). Before, the FederatedJob controller skipped the
user's object while the Submit's job was in flight (it took the object for the one the store was creating),
and once the create met 409 and the job was dropped, nothing admitted the object: it sat with no status until
something changed it or the federator restarted. Admitted between the Submit's admission and its store write,
the object was refused as a duplicate of a job that was never stored, and the job's write took the object
over. Deleted while the create was in flight, the object cancelled the Submit's job.

Each test stops the store's writer thread at one point of the Submit's write (`Gate`), plays the user's part
and the controller's there, then lets the write go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from test_services_edge import good_spec, served

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.backends.kube.api import FEDERATED_JOBS, NotFoundError, key_of
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.informer import ADDED, DELETED, MODIFIED
from federator.backends.kube.resources import FINALIZER
from federator.backends.kube.store import KubeJobStore
from federator.model import JobId, JobPhase
from federator.server.federator import Federator

from kube_fakes import FlakyApi

NAME = ("default", "pretrain")
USERS = {"kind": "training", "replicas": 2, "resources": {"cpu": "2"}}  # not the Submit's spec (cpu 1, 1 replica)


class Gate:
    """Stops the store's writer thread once, where it is called, until the test lets it go."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()
        self.used = False

    def __call__(self) -> None:
        if self.used:
            return
        self.used = True
        self.reached.set()
        assert self.go.wait(10), "the test never let the write go on"

    async def wait(self) -> None:
        assert await asyncio.to_thread(self.reached.wait, 10), "the write never reached the gate"


class GatedApi(FlakyApi):
    """FlakyApi that sends each change to a watcher as the informer would (`watch`); whose FederatedJob create
    by the store (for a gRPC job) first passes `gate`; and that deletes as the API server does, finalizers
    first."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: Callable[[], None] = lambda: None
        self.watch: Callable[[str, dict[str, Any]], None] = lambda kind, obj: None

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None, *,
               strict: bool = False) -> dict[str, Any]:
        if FINALIZER in (body["metadata"].get("finalizers") or []):
            self.gate()  # only the store creates an object with the finalizer on
        obj = super().create(res, body, namespace, strict=strict)
        self.watch(ADDED, obj)
        return obj

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        if (str(namespace), name) not in self.objects:
            raise NotFoundError(404, f"{name} not found")
        obj = super().patch(res, name, body, namespace, subresource=subresource)
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            del self.objects[(str(namespace), name)]  # its last finalizer taken off: gone
            self.watch(DELETED, obj)
        else:
            self.watch(MODIFIED, obj)
        return obj

    def delete(self, name: str, namespace: str) -> None:
        obj = self.objects[(namespace, name)]
        if obj["metadata"].get("finalizers"):
            obj["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
            self.watch(MODIFIED, copy.deepcopy(obj))
        else:
            del self.objects[(namespace, name)]
            self.watch(DELETED, obj)


@contextlib.asynccontextmanager
async def watching(fed: Federator, api: GatedApi, store: KubeJobStore) -> AsyncIterator[FederatedJobController]:
    """The FederatedJob controller's workers, fed each change `api` makes, in order, as by its informer."""
    ctl = FederatedJobController(fed, api, store)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()

    def seen(kind: str, obj: dict[str, Any]) -> None:
        if kind == DELETED:
            ctl.informer.cache.pop(key_of(obj), None)
        else:
            ctl.informer.cache[key_of(obj)] = obj
        ctl._enqueue(kind, obj)
    api.watch = lambda kind, obj: loop.call_soon_threadsafe(seen, kind, copy.deepcopy(obj))
    workers = [asyncio.ensure_future(ctl._work(q)) for q in ctl._queues]
    try:
        yield ctl
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


def kubectl_apply(api: GatedApi) -> None:
    api.create(FEDERATED_JOBS, {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                "metadata": {"name": NAME[1]}, "spec": USERS}, NAME[0])


async def submit_refused(stub: jobs_pb2_grpc.JobServiceStub) -> grpc.aio.AioRpcError:
    try:
        reply = await stub.Submit(good_spec(NAME[1]))
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError(f"the Submit was accepted as job {reply.job.job_id}, {reply.job.phase}")


async def until(what: str, fn: Callable[[], object], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if fn():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not {what} after {timeout:g}s")


def admitted_as_the_users(fed: Federator, api: GatedApi) -> str:
    """The user's object holds the name and its own job, which the federator lists; the job id."""
    obj = api.objects[NAME]
    job_id = (obj.get("status") or {}).get("jobId")
    assert job_id, f"the user's object was never admitted: {obj.get('status')}"
    (job,) = fed.list_jobs()
    assert job.job_id == job_id and job.spec.replicas == 2 and not job.phase.is_terminal
    return job_id


@pytest.mark.parametrize("where", ["during the create", "before the store write"])
def test_a_kubectl_apply_racing_a_submit_of_its_name_is_admitted_and_the_submit_is_already_exists(
        where: str) -> None:
    """`during the create`: the object is made while the store's create for the Submit is on its way;
    `before the store write`: between the Submit's admission and its store write. Either way the controller
    sees it while the Submit's job is in flight."""
    async def main() -> None:
        api = GatedApi()
        store = KubeJobStore(api)  # type: ignore[arg-type]
        gate = Gate()
        if where == "during the create":
            api.gate = gate
        else:
            put = store.put
            store.put = lambda jobs: (gate(), put(jobs))[1]  # type: ignore[method-assign]
        async with served(store=store) as s, watching(s.fed, api, store):
            async with grpc.aio.insecure_channel(s.target) as ch:
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                submit = asyncio.ensure_future(submit_refused(stub))
                await gate.wait()
                kubectl_apply(api)
                await asyncio.sleep(0.3)  # the controller has seen it (and, before, skipped it)
                gate.go.set()
                refused = await submit
                assert refused.code() is grpc.StatusCode.ALREADY_EXISTS
                details = refused.details() or ""
                assert details.startswith("metadata.name: FederatedJob default/pretrain exists and is not this "
                                          "job's (")
                assert details.endswith("the job was not accepted")
                await until("admitted", lambda: (api.objects[NAME].get("status") or {}).get("jobId"))
                job_id = admitted_as_the_users(s.fed, api)
                listed = await stub.List(jobs_pb2.ListJobsRequest())
                assert [j.job_id for j in listed.jobs] == [job_id]
                assert store.owner_of(job_id).uid == api.objects[NAME]["metadata"]["uid"]  # type: ignore[union-attr]
        # A federator that starts now rebuilds that one job from the object, and nothing else.
        again = Federator(store=KubeJobStore(api))  # type: ignore[arg-type]
        assert list(again.jobs) == [job_id]

    asyncio.run(main())


def test_a_kubectl_apply_deleted_while_a_submit_of_its_name_is_in_flight_does_not_cancel_that_job() -> None:
    """The object is made and deleted while the store's create for the Submit is on its way. Its deletion
    cancelled the Submit's job (the controller took the object for the job's): the Submit was answered OK
    with a job Cancelled. Now the object goes, the create finds the name free, and the job runs."""
    async def main() -> None:
        api = GatedApi()
        store = KubeJobStore(api)  # type: ignore[arg-type]
        gate = Gate()
        api.gate = gate
        async with served(store=store) as s, watching(s.fed, api, store):
            async with grpc.aio.insecure_channel(s.target) as ch:
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                submit = asyncio.ensure_future(stub.Submit(good_spec(NAME[1])))
                await gate.wait()
                kubectl_apply(api)
                user_uid = api.objects[NAME]["metadata"]["uid"]
                await asyncio.sleep(0.3)
                api.delete(NAME[1], NAME[0])  # kubectl delete
                await asyncio.sleep(0.3)
                gate.go.set()
                job = (await submit).job
                await until("the user's object gone", lambda: api.objects[NAME]["metadata"]["uid"] != user_uid)
                assert s.fed.jobs[JobId(job.job_id)].phase is JobPhase.PENDING  # not cancelled
                assert [j.job_id for j in s.fed.list_jobs()] == [job.job_id]  # nothing for the deleted object
                assert api.objects[NAME]["status"]["jobId"] == job.job_id  # the name is the job's now

    asyncio.run(main())
