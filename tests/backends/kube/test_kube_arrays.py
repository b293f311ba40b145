"""Job arrays in Kubernetes mode (backends/kube/arrays.py): a FederatedJob with spec.array makes one owned
FederatedJob per index, NAME-INDEX; a name another object holds refuses the array and overwrites nothing; the
tasks are throttled by the federator's own array throttle; the array's status counts its tasks."""

from __future__ import annotations

import asyncio
from typing import Any

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError, NotFoundError
from federator.backends.kube.arrays import array_id_of, count, plan, request_of, task_object
from federator.backends.kube.resources import FINALIZER
from federator.model import JobPhase, ReasonCode
from federator.model.array import ArrayRequest

from builders import cluster, pool
from kube_fakes import Events, FlakyApi, controller, federated_job

TRAIN = {"kind": "training", "resources": {"cpu": "1"}}


class Api(FlakyApi):
    """FlakyApi with deletes (an array undoing the tasks it made)."""

    def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> None:
        assert method == "DELETE"
        ns, name = path.split("/namespaces/")[1].split("/")[0], path.rsplit("/", 1)[1]
        obj = self.objects.get((ns, name))
        if obj is None:
            raise NotFoundError(404, f"{name} not found")
        if obj["metadata"]["uid"] != ((body or {}).get("preconditions") or {}).get("uid", obj["metadata"]["uid"]):
            raise ConflictError(409, "uid precondition failed")
        del self.objects[(ns, name)]


def sweep(api: FlakyApi, name: str = "sweep", indices: str = "0-3", max_running: int = 0) -> dict[str, Any]:
    array: dict[str, Any] = {"indices": indices}
    if max_running:
        array["maxRunning"] = max_running
    return api.create(FEDERATED_JOBS, {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                       "metadata": {"name": name, "annotations": {"team": "vision"}},
                                       "spec": {**TRAIN, "array": array}}, "research")


def seen(ctl: Any, api: FlakyApi) -> None:
    """The informer's cache as the API server has it now."""
    ctl.informer.cache.clear()
    ctl.informer.cache.update({f"{ns}/{n}": o for (ns, n), o in api.objects.items()})


async def submit_tasks(ctl: Any, api: FlakyApi, names: list[str]) -> None:
    """Each task reconciled as the controller would: its finalizer first, then its submit."""
    for name in names:
        await ctl.reconcile("ADDED", api.objects[("research", name)])
        await ctl.reconcile("MODIFIED", api.objects[("research", name)])


def test_an_array_makes_one_owned_federatedjob_per_index_named_name_index_and_is_no_job_itself() -> None:
    async def main() -> None:
        api = Api()
        async with controller(api) as (fed, ctl):
            array = sweep(api, indices="0-2,7", max_running=2)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            assert not fed.jobs  # the array is never a job
            assert "finalizers" not in api.objects[("research", "sweep")]["metadata"]
            names = sorted(n for _, n in api.objects if n != "sweep")
            assert names == ["sweep-0", "sweep-1", "sweep-2", "sweep-7"]
            task = api.objects[("research", "sweep-7")]
            (ref,) = task["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == \
                ("FederatedJob", "sweep", array["metadata"]["uid"], True)
            assert "array" not in task["spec"] and task["spec"]["kind"] == "training"
            annotations = task["metadata"]["annotations"]
            assert annotations["team"] == "vision"
            assert (annotations["federator.io/array-id"], annotations["federator.io/array-task-id"],
                    annotations["federator.io/array-max-running"]) == (array_id_of(array), "7", "2")
            status = api.objects[("research", "sweep")]["status"]
            assert status["arrayId"] == array_id_of(array)
            assert status["tasks"] == {"total": 4, "pending": 4, "running": 0, "succeeded": 0, "failed": 0,
                                       "deleted": 0}
            assert status["phase"] == "Pending"

            await submit_tasks(ctl, api, names)
            job = fed.get("sweep-7")
            assert job is not None and job.spec.array is not None
            assert (job.spec.array.array_id, job.spec.array.task_id) == (array_id_of(array), 7)

    asyncio.run(main())


def test_names_are_deterministic_and_the_throttle_field_has_the_crd_name() -> None:
    array = {"metadata": {"name": "sweep", "namespace": "research", "uid": "0a1b2c3d-0000"}, "spec": {
        **TRAIN, "array": {"indices": "0-15:5"}}}
    request = request_of(array)
    assert request == ArrayRequest((0, 5, 10, 15), 0)
    assert array_id_of(array) == "sweep-0a1b2c"
    assert [t["metadata"]["name"] for t in plan(array, request, {}).create] == \
        ["sweep-0", "sweep-5", "sweep-10", "sweep-15"]
    bad = {**array, "spec": {**TRAIN, "array": {"indices": "0-9%2", "maxRunning": 3}}}
    assert request_of(bad) == "spec.array.maxRunning: 3 disagrees with the %2 of array.indices"
    assert str(request_of({**array, "spec": {"array": {"indices": "9-1"}}})).startswith("spec.array.indices:")


def test_a_task_name_held_by_a_users_federatedjob_refuses_the_array_and_overwrites_nothing() -> None:
    async def main() -> None:
        api, events = Api(), Events()
        async with controller(api, events=events) as (fed, ctl):
            mine = federated_job(api, "sweep-2", {**TRAIN, "priority": 5})
            array = sweep(api)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            assert sorted(n for _, n in api.objects) == ["sweep", "sweep-2"]  # no task made
            assert api.objects[("research", "sweep-2")] == mine  # untouched
            status = api.objects[("research", "sweep")]["status"]
            assert status["phase"] == "Failed" and "arrayId" not in status
            assert status["message"].startswith("spec.array: the task name sweep-2 in namespace research is taken "
                                                 "by a FederatedJob this array does not own")
            failed = {c["type"]: c for c in status["conditions"]}["Failed"]
            assert (failed["status"], failed["reason"]) == ("True", "NameClash")
            (event,) = events.posted
            assert (event["type"], event["reason"]) == ("Warning", "NameClash")
            seen(ctl, api)
            await ctl.reconcile("MODIFIED", api.objects[("research", "sweep")])  # judged once per generation
            assert len(events.posted) == 1 and len(api.objects) == 2

    asyncio.run(main())


def test_a_clash_met_while_creating_deletes_the_tasks_made_all_or_none() -> None:
    async def main() -> None:
        api = Api()
        async with controller(api) as (fed, ctl):
            array = sweep(api)
            seen(ctl, api)  # the informer has not seen the user's object, made just now
            federated_job(api, "sweep-3", TRAIN)
            await ctl.reconcile("ADDED", array)
            assert sorted(n for _, n in api.objects) == ["sweep", "sweep-3"]
            assert "ownerReferences" not in api.objects[("research", "sweep-3")]["metadata"]
            assert api.objects[("research", "sweep")]["status"]["phase"] == "Failed"

    asyncio.run(main())


def test_made_again_after_a_crash_mid_creation_makes_only_the_missing_tasks() -> None:
    async def main() -> None:
        api = Api()
        async with controller(api) as (fed, ctl):
            array = sweep(api)
            request = request_of(array)
            assert isinstance(request, ArrayRequest)
            api.create(FEDERATED_JOBS, task_object(array, request, 1), "research")  # the leader before made one
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            assert sorted(n for _, n in api.objects) == ["sweep", "sweep-0", "sweep-1", "sweep-2", "sweep-3"]
            assert api.objects[("research", "sweep")]["status"]["tasks"]["total"] == 4

    asyncio.run(main())


def test_max_running_lets_go_at_most_that_many_tasks_and_the_next_when_one_ends() -> None:
    async def main() -> None:
        api = Api()
        async with controller(api) as (fed, ctl):
            array = sweep(api, max_running=2)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            await submit_tasks(ctl, api, ["sweep-0", "sweep-1", "sweep-2", "sweep-3"])
            rec = fed.connect(cluster="east-1", region="east", labels={})
            fed.report(rec, cluster("east-1", "east", pool("NVIDIA-H100", nodes=4)).capacity)
            fed.schedule_once()
            placed = sorted(j.spec.name for j in fed.jobs.values() if j.phase is JobPhase.PLACED)
            assert placed == ["sweep-0", "sweep-1"]
            waiting = fed.get("sweep-3")
            assert waiting is not None and waiting.pending_reason is not None
            assert waiting.pending_reason.code is ReasonCode.ARRAY_THROTTLE
            first = fed.get("sweep-0")
            assert first is not None
            (pid,) = [p.placement_id for p in first.placements]
            fed.job_update(rec, pid, JobPhase.SUCCEEDED, "")
            while first.job_id in fed.arrays._array_of:  # its end is told once its status is written
                await asyncio.sleep(0.01)
            fed.schedule_once()
            placed = sorted(j.spec.name for j in fed.jobs.values() if j.phase is JobPhase.PLACED)
            assert placed == ["sweep-1", "sweep-2"]

    asyncio.run(main())


def test_array_annotations_on_an_object_no_array_controls_are_refused() -> None:
    async def main() -> None:
        api = Api()
        async with controller(api) as (fed, ctl):
            array = sweep(api, max_running=1)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            request = request_of(array)
            assert isinstance(request, ArrayRequest)
            stowaway = task_object(array, request, 0)  # the array's annotations, copied by hand, and no owner
            stowaway["metadata"].update(name="extra", finalizers=[FINALIZER])
            del stowaway["metadata"]["ownerReferences"]
            obj = api.create(FEDERATED_JOBS, stowaway, "research")
            await ctl.reconcile("ADDED", obj)
            assert not fed.jobs.named("extra")
            status = api.objects[("research", "extra")]["status"]
            assert status["phase"] == "Failed" and status["message"].startswith(
                "spec.array: the federator.io/array-* annotations are set by the federator")

    asyncio.run(main())


def test_an_object_claiming_the_array_as_its_controller_is_not_counted_as_its_task() -> None:
    """new59 N8: anyone who may create a FederatedJob may write an ownerReference naming the array (controller:
    true); such an object is refused as a task, and was counted in the array's status as a failed task, failing the
    array whose own tasks all succeed. Only NAME-INDEX of its indices are its tasks."""
    async def main() -> None:
        api = Api()
        async with controller(api) as (fed, ctl):
            array = sweep(api, indices="0-1")
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            request = request_of(array)
            assert isinstance(request, ArrayRequest)
            forged = task_object(array, request, 0)  # the array's annotations and its controller reference
            forged["metadata"].update(name="sweep-extra", finalizers=[FINALIZER])
            obj = api.create(FEDERATED_JOBS, forged, "research")
            await ctl.reconcile("ADDED", obj)
            assert api.objects[("research", "sweep-extra")]["status"]["phase"] == "Failed"
            seen(ctl, api)
            await ctl.reconcile("MODIFIED", api.objects[("research", "sweep")])
            tasks = api.objects[("research", "sweep")]["status"]["tasks"]
            assert (tasks["total"], tasks["failed"], tasks["pending"]) == (2, 0, 2), tasks

    asyncio.run(main())


def test_the_array_counts_its_tasks_by_phase() -> None:
    request = ArrayRequest((0, 1, 2, 3, 4, 5), 2)
    counts = count(request, [{"status": {"phase": p}} for p in ["Running", "Placed", "Succeeded", "Cancelled", {}]
                             if isinstance(p, str)] + [{}])
    assert (counts.total, counts.pending, counts.running, counts.succeeded, counts.failed, counts.deleted) == \
        (6, 1, 2, 1, 1, 1)
    assert counts.phase is JobPhase.RUNNING
    done = count(request, [{"status": {"phase": "Succeeded"}}] * 6)
    assert done.phase is JobPhase.SUCCEEDED
    ended = count(request, [{"status": {"phase": "Succeeded"}}] * 5 + [{"status": {"phase": "Failed"}}])
    assert ended.phase is JobPhase.FAILED


def test_a_task_leaves_the_ttl_to_its_array_which_finishes_when_all_its_tasks_ended() -> None:
    """A task with the array's ttlSecondsAfterFinished would be deleted at its own end and count as deleted,
    failing an array all of whose tasks succeeded; the array's Finished condition is what its TTL counts from."""
    from federator.backends.kube.arrays import array_status
    from federator.backends.kube.finished_ttl import due_at
    array = {"metadata": {"name": "sweep", "namespace": "research", "uid": "0a1b2c3d", "generation": 1},
             "spec": {**TRAIN, "ttlSecondsAfterFinished": 60, "array": {"indices": "0-1"}}}
    request = request_of(array)
    assert isinstance(request, ArrayRequest)
    assert "ttlSecondsAfterFinished" not in task_object(array, request, 0)["spec"]
    running = {**array, "status": array_status(array, request, count(request, [
        {"status": {"phase": "Succeeded"}}, {"status": {"phase": "Running"}}]), now=1000.0)}
    assert due_at(running) is None
    done = {**array, "status": array_status(array, request, count(request, [
        {"status": {"phase": "Succeeded"}}] * 2), now=2000.0)}
    assert done["status"]["phase"] == "Succeeded" and due_at(done) == 2060.0


def test_a_new_leader_keeps_the_throttle_from_the_tasks_phases_in_their_federatedjobs() -> None:
    """Nothing of the throttle is kept but the tasks' own status: a federator started on the same objects (a
    restart, a new leader) lets go no more than maxRunning, the two placed ones counting."""
    async def main() -> None:
        api = Api()
        async with controller(api) as (fed, ctl):
            array = sweep(api, max_running=2)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            await submit_tasks(ctl, api, ["sweep-0", "sweep-1", "sweep-2", "sweep-3"])
            fed.report(fed.connect(cluster="east-1", region="east", labels={}),
                       cluster("east-1", "east", pool("NVIDIA-H100", nodes=4)).capacity)
            fed.schedule_once()

            def phases() -> list[str]:
                return sorted((o.get("status") or {}).get("phase", "") for (_, n), o in api.objects.items()
                              if n != "sweep")
            while phases() != ["Pending", "Pending", "Placed", "Placed"]:  # the status writes are off the loop
                await asyncio.sleep(0.01)
        async with controller(api) as (fed, ctl):  # the next leader, from the objects alone
            assert len(fed.jobs) == 4
            fed.report(fed.connect(cluster="east-1", region="east", labels={}),
                       cluster("east-1", "east", pool("NVIDIA-H100", nodes=4)).capacity)
            fed.schedule_once()
            assert sorted(j.phase.value for j in fed.jobs.values()) == ["Pending", "Pending", "Placed", "Placed"]
            for job in fed.jobs.values():
                if job.phase is JobPhase.PENDING:
                    assert job.throttled and job.pending_reason is not None
                    assert job.pending_reason.code is ReasonCode.ARRAY_THROTTLE

    asyncio.run(main())


def test_a_submits_indices_are_written_as_runs_the_parser_reads_back() -> None:
    """A gRPC array Submit writes its checked indices into spec.array.indices (array_submit.py): as runs, so 1000
    indices stay short, and parsed back to the same tasks."""
    from federator.backends.kube.array_submit import indices_text
    from federator.model.array import parse_indices
    for indices in [(0,), (0, 1, 2, 3), (0, 4, 8, 12), (1, 3, 5, 6, 7), tuple(range(1000)), (5, 99999)]:
        text = indices_text(indices)
        assert parse_indices(text, 3) == ArrayRequest(indices, 3), text
    assert indices_text(tuple(range(1000))) == "0-999"
    assert indices_text((1, 3, 5, 6, 7)) == "1,3,5-7"


def test_an_array_a_submit_made_and_the_controller_refused_is_deleted_all_or_none() -> None:
    """A clash met after the Submit's checks (an object made in between): the Submit answers the refusal, and
    the array's FederatedJob it made goes too, so a retry is not met by its own leftover (array_submit.py)."""
    import pytest

    from federator.server.submit_errors import SubmitError

    async def main() -> None:
        api = Api()
        async with controller(api) as (fed, ctl):
            array = sweep(api)
            request = request_of(array)
            assert isinstance(request, ArrayRequest)
            api.objects[("research", "sweep")]["status"] = {"phase": "Failed", "message": "spec.array: clash"}
            seen(ctl, api)
            with pytest.raises(SubmitError) as err:
                await fed.arrays.maker._accepted(array, request)
            assert str(err.value) == "spec.array: clash; the array's FederatedJob research/sweep was deleted"
            assert ("research", "sweep") not in api.objects

    asyncio.run(main())
