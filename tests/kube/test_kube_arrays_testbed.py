"""Job arrays in Kubernetes mode against a real API server and its garbage collector (backends/kube/arrays.py):
`kubectl apply` of a FederatedJob with spec.array makes its tasks NAME-INDEX with ownerReferences, at most
maxRunning of them are let go, the array's status counts them, a name a user's FederatedJob holds refuses the
array and overwrites nothing, the CRD keeps spec.array immutable, and `kubectl delete` of the array deletes its
tasks (kube-controller-manager's garbage collector) and cancels their jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from federator.backends.kube.api import FEDERATED_JOBS, KubeApi, NotFoundError
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.events import EventRecorder
from federator.backends.kube.store import KubeJobStore
from federator.model import JobPhase
from federator.server.federator import Federator

from builders import cluster, pool
from kube_support import CRDS, H100, Testbed
from support import accepted, until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "sweeps"
TRAIN = {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 1}}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    bed = Testbed.start(tmp_path_factory.mktemp("arrays-bed"), members=(), host_controller_manager=True)
    try:
        bed.kubectl("host", "apply", "-f", str(CRDS))
        bed.kubectl("host", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        bed.kubectl("host", "create", "namespace", NAMESPACE)
        yield bed
    finally:
        bed.stop()


def document(name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                           "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec})


async def federator(api: KubeApi) -> tuple[KubeJobStore, Federator, FederatedJobController]:
    """A federator and its FederatedJob controller on the host, with member-a (16 H100) connected."""
    store = KubeJobStore(api, namespace=NAMESPACE, events=EventRecorder(api))
    fed = Federator(store=store)
    ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE)
    await ctl.start()
    rec = fed.connect(cluster="member-a", region="east", labels={})
    fed.report(rec, cluster("member-a", "east", pool(H100, nodes=2, free=8)).capacity)
    return store, fed, ctl


def test_an_applied_array_makes_owned_throttled_tasks_counts_them_and_its_delete_cascades(host: Testbed) -> None:
    api = KubeApi.connect(host.host.kubeconfig)

    def obj(name: str) -> dict[str, Any] | None:
        try:
            return api.get(FEDERATED_JOBS, name, NAMESPACE)
        except NotFoundError:
            return None

    def status(name: str) -> dict[str, Any]:
        return (obj(name) or {}).get("status") or {}

    def tasks_of(uid: str) -> list[dict[str, Any]]:
        return [o for o in api.list(FEDERATED_JOBS, NAMESPACE)["items"]
                if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])]

    async def main() -> None:
        store, fed, ctl = await federator(api)
        try:
            host.kubectl("host", "apply", "-f", "-",
                         input=document("sweep", {**TRAIN, "array": {"indices": "0-4", "maxRunning": 2}}))
            array = obj("sweep")
            assert array is not None
            uid = array["metadata"]["uid"]
            await accepted(fed, NAMESPACE, *(f"sweep-{i}" for i in range(5)))
            assert len(fed.jobs) == 5
            tasks = tasks_of(uid)
            assert sorted(t["metadata"]["name"] for t in tasks) == [f"sweep-{i}" for i in range(5)]
            for task in tasks:
                (ref,) = task["metadata"]["ownerReferences"]
                assert (ref["kind"], ref["name"], ref["controller"]) == ("FederatedJob", "sweep", True)
            assert not fed.jobs.named("sweep")  # the array is no job

            fed.schedule_once()
            placed = [j for j in fed.jobs.values() if j.phase is JobPhase.PLACED]
            assert len(placed) == 2, [(j.spec.name, j.phase) for j in fed.jobs.values()]
            array_id = status("sweep").get("arrayId")
            assert array_id and all(j.spec.array is not None and j.spec.array.array_id == array_id
                                    for j in fed.jobs.values())
            await until(lambda: status("sweep").get("tasks", {}).get("running") == 2)
            assert status("sweep")["tasks"] == {"total": 5, "pending": 3, "running": 2, "succeeded": 0,
                                                "failed": 0, "deleted": 0}
            assert status("sweep")["phase"] == "Running"
            throttled = [j for j in fed.jobs.values() if j.phase is JobPhase.PENDING]
            assert all(j.pending_reason is not None and j.pending_reason.code.value == "ArrayThrottle"
                       for j in throttled)

            # A new leader (a restart, a failover) judges the throttle again from the tasks' objects alone.
            await ctl.stop()
            store.close()
            store, fed, ctl = await federator(api)
            assert len(fed.jobs) == 5
            fed.schedule_once()
            assert sorted(j.phase.value for j in fed.jobs.values()) == ["Pending"] * 3 + ["Placed"] * 2
            assert all(j.throttled for j in fed.jobs.values() if j.phase is JobPhase.PENDING)

            # The CRD keeps spec.array as it was made, naming the field.
            patched = host.kubectl("host", "patch", "fj", "sweep", "-n", NAMESPACE, "--type=merge", "-p",
                                   '{"spec":{"array":{"indices":"0-4","maxRunning":5}}}', check=False)
            assert patched.returncode != 0 and "spec.array: is immutable" in patched.stderr, patched.stderr

            # A task's name held by a user's FederatedJob: the array is refused, nothing overwritten.
            host.kubectl("host", "apply", "-f", "-", input=document("grid-1", TRAIN))
            await until(lambda: len(fed.jobs.named("grid-1")) == 1)
            host.kubectl("host", "apply", "-f", "-", input=document("grid", {**TRAIN, "array": {"indices": "0-2"}}))
            await until(lambda: status("grid").get("phase") == "Failed")
            assert "grid-1 in namespace sweeps is taken by a FederatedJob this array does not own" in \
                status("grid")["message"]
            failed = {c["type"]: c for c in status("grid")["conditions"]}["Failed"]
            assert failed["reason"] == "NameClash"
            assert obj("grid-0") is None and obj("grid-2") is None
            mine = obj("grid-1")
            assert mine is not None and not mine["metadata"].get("ownerReferences")
            # An ended array is no refused job to fix: spec.array stays, and cannot be patched away (new59 N6)
            for patch in ('{"spec":{"array":{"indices":"0-9"}}}', '{"spec":{"array":null}}'):
                patched = host.kubectl("host", "patch", "fj", "grid", "-n", NAMESPACE, "--type=merge", "-p", patch,
                                       check=False)
                assert patched.returncode != 0 and "spec.array: is immutable" in patched.stderr, patched.stderr

            # kubectl delete of the array: the garbage collector deletes its tasks, whose jobs are cancelled.
            swept = [j for j in fed.jobs.values() if j.spec.array is not None and j.spec.array.array_id == array_id]
            assert len(swept) == 5
            host.kubectl("host", "delete", "fj", "sweep", "-n", NAMESPACE, "--wait=false")
            await until(lambda: not tasks_of(uid), timeout=90)
            assert all(j.phase is JobPhase.CANCELLED for j in swept), [(j.spec.name, j.phase) for j in swept]
            assert obj("grid-1") is not None  # a user's object is nobody's task
        finally:
            await ctl.stop()
            store.close()

    asyncio.run(main())


def test_a_grpc_array_submit_makes_the_array_object_and_answers_its_tasks_as_the_callers(host: Testbed) -> None:
    """`federator submit --array` against a Kubernetes-mode federator (SubmitRequest.array): the same FederatedJob
    with spec.array kubectl would apply, its tasks the caller's jobs, a retry answered with them, and a task name
    another object holds refused before any object is made."""
    import grpc

    from federator.api import convert
    from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
    from federator.jobfile import parse_job
    from federator.security.auth import Authenticator
    from federator.server.job_service import JobService

    api = KubeApi.connect(host.host.kubeconfig)

    class EveryNamespace:
        async def refusal(self, spec: Any) -> None:
            return None

    def request(name: str, indices: str, max_running: int, request_id: str) -> jobs_pb2.SubmitRequest:
        spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                          "metadata": {"name": name, "namespace": NAMESPACE}, "spec": TRAIN})
        return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec), request_id=request_id,
                                      array=jobs_pb2.JobArray(indices=indices, max_running=max_running))

    async def main() -> None:
        store = KubeJobStore(api, namespace=NAMESPACE, events=EventRecorder(api))
        fed = Federator(store=store)
        ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE)
        await ctl.start()
        server = grpc.aio.server()
        jobs_pb2_grpc.add_JobServiceServicer_to_server(
            JobService(fed, Authenticator(insecure=True), namespaces=EveryNamespace()), server)  # type: ignore[arg-type]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                answer = await stub.Submit(request("grid2", "0-2", 1, "r-grid2"))
                made = api.get(FEDERATED_JOBS, "grid2", NAMESPACE)
                assert made["spec"]["array"] == {"indices": "0-2", "maxRunning": 1}
                assert answer.array_id == made["status"]["arrayId"]
                assert [j.spec.name for j in answer.array_jobs] == ["grid2-0", "grid2-1", "grid2-2"]
                owners = {fed.jobs[j.job_id].spec.recorded_user for j in answer.array_jobs}  # type: ignore[index]
                assert len(owners) == 1 and "" not in owners, owners
                task = api.get(FEDERATED_JOBS, "grid2-1", NAMESPACE)
                assert task["metadata"]["ownerReferences"][0]["uid"] == made["metadata"]["uid"]

                again = await stub.Submit(request("grid2", "0-2", 1, "r-grid2"))  # a retry
                assert again.replayed and [j.job_id for j in again.array_jobs] == \
                    [j.job_id for j in answer.array_jobs]

                host.kubectl("host", "apply", "-f", "-", input=document("lone-1", TRAIN))
                await until(lambda: len(fed.jobs.named("lone-1")) == 1)
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.Submit(request("lone", "0-2", 0, ""))
                assert "lone-1" in err.value.details(), err.value.details()
                with pytest.raises(NotFoundError):
                    api.get(FEDERATED_JOBS, "lone", NAMESPACE)  # refused before any object was made
        finally:
            await server.stop(0)
            await ctl.stop()
            store.close()

    asyncio.run(main())


def test_a_dependent_applied_with_the_array_it_names_waits_for_every_task(host: Testbed) -> None:
    """GitOps: one apply of a directory holding `merge` (dependsOn the array object `pipe`, by name: its id carries
    a uid no repository knows) and `pipe`, the dependent first. `merge` is submitted once every task is accepted,
    kept as the array's id, and placed only once both tasks Succeeded."""
    api = KubeApi.connect(host.host.kubeconfig)

    async def main() -> None:
        store, fed, ctl = await federator(api)
        try:
            both = document("merge", {**TRAIN, "dependsOn": {"condition": "afterok", "jobs": ["pipe"]}}) + \
                "---\n" + document("pipe", {**TRAIN, "array": {"indices": "0-1"}})
            host.kubectl("host", "apply", "-f", "-", input=both)
            # merge is submitted once every task is in the job table; each is a cycle's candidate once stored
            await accepted(fed, NAMESPACE, "merge", "pipe-0", "pipe-1")
            (merge,) = fed.jobs.named("merge")
            array_id = (api.get(FEDERATED_JOBS, "pipe", NAMESPACE).get("status") or {}).get("arrayId")
            assert array_id and merge.spec.depends_on is not None and merge.spec.depends_on.jobs == (array_id,)
            tasks = [j for j in fed.jobs.values() if j.spec.array is not None and j.spec.array.array_id == array_id]
            assert len(tasks) == 2  # every task accepted before it: it waits on both
            assert merge.waiting_on and merge.pending_reason is not None
            assert merge.pending_reason.message == f"waiting for afterok: every task of array {array_id} (2 tasks)"

            fed.schedule_once()
            assert all(t.phase is JobPhase.PLACED for t in tasks) and merge.phase is JobPhase.PENDING
            for task in tasks:
                fed.job_update(fed.clusters["member-a"], task.placements[0].placement_id, JobPhase.SUCCEEDED, "")
            await until(lambda: not merge.waiting_on)
            fed.schedule_once()
            assert merge.phase is JobPhase.PLACED
        finally:
            await ctl.stop()
            store.close()

    asyncio.run(main())


def test_arrays_naming_each_other_and_a_cycle_through_an_array_are_refused_naming_the_cycle(host: Testbed) -> None:
    """Each task of an array copies its spec.dependsOn, and waits unsubmitted until every task of what it names is
    accepted: two arrays naming each other (or an array and a job naming each other) waited so for ever. As a plain
    job's cycle is, every object of it is refused, naming the cycle; no task of it becomes a job."""
    api = KubeApi.connect(host.host.kubeconfig)

    def status(name: str) -> dict[str, Any]:
        try:
            return api.get(FEDERATED_JOBS, name, NAMESPACE).get("status") or {}
        except NotFoundError:  # a task not made yet
            return {}

    def refused(name: str) -> bool:
        return status(name).get("phase") == "Failed"

    tasks = ["ring-a-0", "ring-a-1", "ring-b-0", "ring-b-1", "loop-a-0", "loop-a-1", "loop-j"]

    async def main() -> None:
        store, fed, ctl = await federator(api)
        try:
            ring = document("ring-a", {**TRAIN, "array": {"indices": "0-1"}, "dependsOn": {"jobs": ["ring-b"]}}) + \
                "---\n" + document("ring-b", {**TRAIN, "array": {"indices": "0-1"}, "dependsOn": {"jobs": ["ring-a"]}})
            loop = document("loop-a", {**TRAIN, "array": {"indices": "0-1"}, "dependsOn": {"jobs": ["loop-j"]}}) + \
                "---\n" + document("loop-j", {**TRAIN, "dependsOn": {"jobs": ["loop-a"]}})
            host.kubectl("host", "apply", "-f", "-", input=ring + "---\n" + loop)
            await until(lambda: all(refused(t) for t in tasks), timeout=60)
            assert not any(fed.jobs.named(t) for t in tasks)  # none submitted
            for t in tasks[:4]:
                assert status(t)["message"] in (
                    "spec.dependsOn.jobs: a cycle, ring-a -> ring-b -> ring-a: none of them could ever run; "
                    "take one of the names out",
                    "spec.dependsOn.jobs: a cycle, ring-b -> ring-a -> ring-b: none of them could ever run; "
                    "take one of the names out"), status(t)
            for t in tasks[4:]:
                assert any(f"spec.dependsOn.jobs: a cycle, {c}: none of them could ever run" in status(t)["message"]
                           for c in ("loop-a -> loop-j -> loop-a", "loop-j -> loop-a -> loop-j")), status(t)
            await until(lambda: all(refused(a) for a in ("ring-a", "ring-b", "loop-a")))  # each array Failed
        finally:
            await ctl.stop()
            store.close()

    asyncio.run(main())


def test_a_grpc_submit_after_an_array_whose_last_task_is_not_accepted_yet_waits_on_it(host: Testbed) -> None:
    """`federator submit --after ARRAY_ID` while the array's third task is still being accepted (its acceptance held
    back here): the job waits on all three, as a FederatedJob naming the array does. Before, it waited on the two
    accepted so far and was placed once those had succeeded."""
    import grpc

    from federator.api import convert
    from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
    from federator.jobfile import parse_job
    from federator.security.auth import Authenticator
    from federator.server.job_service import JobService

    api = KubeApi.connect(host.host.kubeconfig)

    class EveryNamespace:
        async def refusal(self, spec: Any) -> None:
            return None

    async def main() -> None:
        store, fed, ctl = await federator(api)
        gate = asyncio.Event()
        submit = fed.intake.submit_async

        async def held_back(spec: Any, **kw: Any) -> Any:
            if spec.name == "gate-2":
                await gate.wait()
            return await submit(spec, **kw)

        fed.intake.submit_async = held_back  # type: ignore[method-assign]
        server = grpc.aio.server()
        jobs_pb2_grpc.add_JobServiceServicer_to_server(
            JobService(fed, Authenticator(insecure=True), namespaces=EveryNamespace()), server)  # type: ignore[arg-type]
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            host.kubectl("host", "apply", "-f", "-", input=document("gate", {**TRAIN, "array": {"indices": "0-2"}}))
            await accepted(fed, NAMESPACE, "gate-0", "gate-1")
            array_id = (api.get(FEDERATED_JOBS, "gate", NAMESPACE).get("status") or {}).get("arrayId")
            assert array_id and not fed.jobs.named("gate-2")
            spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                              "metadata": {"name": "after-gate", "namespace": NAMESPACE},
                              "spec": {**TRAIN, "dependsOn": {"jobs": [array_id]}}})
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                answer = await jobs_pb2_grpc.JobServiceStub(ch).Submit(
                    jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec), request_id="r-after-gate"))
            job = fed.jobs[answer.job.job_id]  # type: ignore[index]
            assert job.pending_reason is not None and job.pending_reason.message == \
                f"waiting for afterok: every task of array {array_id} (3 tasks, 1 not accepted yet)"

            fed.schedule_once()
            first = [fed.jobs.named(f"gate-{i}")[0] for i in (0, 1)]
            for task in first:
                fed.job_update(fed.clusters["member-a"], task.placements[0].placement_id, JobPhase.SUCCEEDED, "")
            await until(lambda: all(t.phase is JobPhase.SUCCEEDED for t in first))
            await fed.journal.commit([first[1]])  # after the ends' writes, which judge the dependents
            await asyncio.sleep(0.5)
            fed.schedule_once()
            assert job.waiting_on and job.phase is JobPhase.PENDING  # gate-2 still to come: placed before

            gate.set()
            await accepted(fed, NAMESPACE, "gate-2")
            await until(lambda: job.pending_reason is not None and job.pending_reason.message ==
                        f"waiting for afterok: every task of array {array_id} (3 tasks)")
            fed.schedule_once()
            (last,) = fed.jobs.named("gate-2")
            fed.job_update(fed.clusters["member-a"], last.placements[0].placement_id, JobPhase.SUCCEEDED, "")
            await until(lambda: not job.waiting_on)
            fed.schedule_once()
            assert job.phase is JobPhase.PLACED
        finally:
            gate.set()
            await server.stop(0)
            await ctl.stop()
            store.close()

    asyncio.run(main())
