"""A FederatedJob's spec.dependsOn may name an array object (`sweep`) of its namespace, not only its id
(server/dependencies.py, backends/kube/arrays.py's federator.io/array-name on each task): it waits on every task,
applied before or after the array (a GitOps repository cannot write the id, which carries the array's uid)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from federator.backends.kube.api import FEDERATED_JOBS
from federator.backends.kube.arrays import array_id_of, request_of, task_object
from federator.backends.kube.resources import FINALIZER
from federator.model import DEPENDS_ON_ANNOTATION, Job, JobId, JobPhase, ReasonCode
from federator.model.array import ARRAY_ID_ANNOTATION, ARRAY_NAME_ANNOTATION, ArrayRequest
from federator.server.dependencies import resolved, same_namespace
from federator.server.submit_errors import SubmitError

from builders import cluster, pool
from kube_fakes import FlakyApi, controller, federated_job

TRAIN = {"kind": "training", "resources": {"cpu": "1"}}
TASKS = ["sweep-0", "sweep-1", "sweep-2"]
FAIL_AT_ONCE = {"federator.io/early-failure": "fail"}  # a task's failure soon after starting is not placed again


def seen(ctl: Any, api: FlakyApi) -> None:
    """The informer's cache as the API server has it now."""
    ctl.informer.cache.clear()
    ctl.informer.cache.update({f"{ns}/{n}": o for (ns, n), o in api.objects.items()})


def make_sweep(api: FlakyApi) -> dict[str, Any]:
    meta = {"name": "sweep", "annotations": FAIL_AT_ONCE}
    return api.create(FEDERATED_JOBS, {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": meta,
                                       "spec": {**TRAIN, "array": {"indices": "0-2"}}}, "research")


async def reconcile(ctl: Any, api: FlakyApi, name: str) -> None:
    """One object reconciled as the controller would: its finalizer first, then its submit. (The fake API sets
    no creationTimestamp: a name waited on would be past its bound at once.)"""
    ctl.chains.missing_seconds = float("inf")
    seen(ctl, api)
    await ctl.reconcile("ADDED", api.objects[("research", name)])
    seen(ctl, api)
    await ctl.reconcile("MODIFIED", api.objects[("research", name)])


async def end_tasks(fed: Any, phases: dict[str, JobPhase]) -> None:
    """Every task placed on one member, then ended as `phases` says, each end stored as an agent's report is."""
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool("NVIDIA-H100", nodes=8)).capacity)
    fed.schedule_once()
    for name, phase in phases.items():
        task = fed.get(name)
        assert task is not None and task.phase is JobPhase.PLACED
        (pid,) = [p.placement_id for p in task.placements]
        fed.job_update(rec, pid, phase, "exit 1" if phase is JobPhase.FAILED else "")


async def settled(check: Any) -> None:
    """Waits (a bounded number of loop turns) for the status writes off the loop to make `check()` true."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    assert check()


def merge(api: FlakyApi, condition: str = "afterok") -> dict[str, Any]:
    return federated_job(api, "merge", {**TRAIN, "dependsOn": {"condition": condition, "jobs": ["sweep"]}})


def test_a_dependent_applied_before_the_array_waits_for_every_task_and_runs_once_all_succeeded() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            merge(api)
            await reconcile(ctl, api, "merge")
            assert not fed.jobs.named("merge")  # no array of that name yet: waits as for a FederatedJob to come
            assert api.objects[("research", "merge")]["status"]["pendingReason"]["code"] == "Dependency"

            array = make_sweep(api)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            for name in TASKS[:2]:
                await reconcile(ctl, api, name)
            await reconcile(ctl, api, "merge")
            assert not fed.jobs.named("merge")  # a task is still to come: it would wait on two of three
            assert "every task of array sweep to be accepted" in \
                api.objects[("research", "merge")]["status"]["pendingReason"]["message"]

            await reconcile(ctl, api, TASKS[2])
            await reconcile(ctl, api, "merge")
            job = fed.get("merge")
            assert job is not None and job.spec.depends_on is not None
            array_id = array_id_of(array)
            assert job.spec.depends_on.jobs == (array_id,)  # kept as the array's id
            assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.DEPENDENCY
            assert f"every task of array {array_id} (3 tasks)" in job.pending_reason.message
            assert len(job.waiting_on) == 1

            await end_tasks(fed, {"sweep-0": JobPhase.SUCCEEDED, "sweep-1": JobPhase.SUCCEEDED})
            await settled(lambda: all(fed.get(n).phase is JobPhase.SUCCEEDED for n in TASKS[:2]))
            assert job.waiting_on and not job.placements  # one task still running
            fed.job_update(fed.clusters["east-1"], fed.get("sweep-2").placements[0].placement_id,
                           JobPhase.SUCCEEDED, "")
            await settled(lambda: not job.waiting_on)
            fed.schedule_once()
            assert job.phase is JobPhase.PLACED

    asyncio.run(main())


def test_a_dependent_applied_after_the_array_names_it_and_fails_when_a_task_failed_under_afterok() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            array = make_sweep(api)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            for name in TASKS:
                await reconcile(ctl, api, name)
            merge(api)
            await reconcile(ctl, api, "merge")
            job = fed.get("merge")
            assert job is not None and job.waiting_on

            await end_tasks(fed, {"sweep-0": JobPhase.SUCCEEDED, "sweep-1": JobPhase.FAILED})
            await settled(lambda: job.phase is JobPhase.FAILED)
            assert job.message.startswith(f"DependencyNeverSatisfied: array {array_id_of(array)}: task ")
            assert "ended Failed" in job.message

    asyncio.run(main())


def test_a_new_leader_keeps_the_dependent_waiting_on_the_array_it_named() -> None:
    """The object's spec.dependsOn says `sweep`; what was accepted keeps the array's id: a federator started on the
    objects judges the dependent against the array's tasks (not as a job `sweep` removed, nor failed)."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            array = make_sweep(api)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            for name in TASKS:
                await reconcile(ctl, api, name)
            merge(api)
            await reconcile(ctl, api, "merge")
            await settled(lambda: (api.objects[("research", "merge")].get("status") or {}).get("jobId"))
        async with controller(api) as (fed, ctl):
            job = fed.get("merge")
            assert job is not None and job.spec.depends_on is not None
            assert job.spec.depends_on.jobs == (array_id_of(array),)
            assert job.waiting_on  # not released as if `sweep` named a job removed under afterany, nor failed
            assert job.pending_reason is not None and array_id_of(array) in job.pending_reason.message
            await end_tasks(fed, dict.fromkeys(TASKS, JobPhase.SUCCEEDED))
            await settled(lambda: not job.waiting_on)
            assert job.phase is JobPhase.PENDING

    asyncio.run(main())


def test_a_name_of_a_plain_job_is_that_job_and_a_name_two_arrays_share_is_refused_as_ambiguous() -> None:
    """A plain job of the name wins (in a namespace a FederatedJob name is one object; both are held only while
    one replaces the other); two arrays of the name (one being replaced) are an error naming both ids."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            array = make_sweep(api)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            for name in TASKS:
                await reconcile(ctl, api, name)
            task = fed.get("sweep-0")
            assert task is not None
            spec = replace(task.spec, name="after", annotations=((DEPENDS_ON_ANNOTATION, "afterok:sweep"),))
            jobs: dict[JobId, Job] = dict(fed.jobs.items())
            assert resolved(jobs, spec, same_namespace(spec)).depends_on.jobs == (array_id_of(array),)  # type: ignore[union-attr]

            plain = replace(task, job_id=JobId("sweep-abc123"), spec=replace(task.spec, name="sweep", annotations=()))
            with_plain = {**jobs, plain.job_id: plain}
            assert resolved(with_plain, spec, same_namespace(spec)).depends_on.jobs == ("sweep-abc123",)  # type: ignore[union-attr]

            other = dict(task.spec.annotations) | {ARRAY_ID_ANNOTATION: "sweep-ffffff"}
            older = replace(task, job_id=JobId("sweep-0-old"),
                            spec=replace(task.spec, annotations=tuple(sorted(other.items()))))
            with pytest.raises(SubmitError) as err:
                resolved({**jobs, older.job_id: older}, spec, same_namespace(spec))
            assert str(err.value) == (f"spec.dependsOn.jobs: 'sweep' names 2 arrays of namespace research "
                                      f"({', '.join(sorted(['sweep-ffffff', array_id_of(array)]))}: one is being "
                                      "replaced); name one by its array id (status.arrayId)")

    asyncio.run(main())



def test_each_task_carries_its_arrays_name_and_a_task_claiming_another_name_is_refused() -> None:
    """The name a dependsOn key matches is set by the controller alone: a task object whose array-name is not its
    controlling owner's name (made by hand with the owner's reference) is refused, as forged array annotations
    are, so it cannot make a dependent of another array's name wait on it."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            array = make_sweep(api)
            request = request_of(array)
            assert isinstance(request, ArrayRequest)
            made = task_object(array, request, 0)
            assert made["metadata"]["annotations"][ARRAY_NAME_ANNOTATION] == "sweep"
            made["metadata"]["annotations"][ARRAY_NAME_ANNOTATION] = "other"
            made["metadata"]["finalizers"] = [FINALIZER]
            api.create(FEDERATED_JOBS, made, "research")
            await reconcile(ctl, api, "sweep-0")
            assert not fed.jobs.named("sweep-0")
            status = api.objects[("research", "sweep-0")]["status"]
            assert status["phase"] == "Failed" and status["message"].startswith(
                "spec.array: the federator.io/array-* annotations are set by the federator")

    asyncio.run(main())


@pytest.mark.parametrize(("named", "message"), [
    # its tasks copy its spec.dependsOn: each would wait on the array it is part of, for ever
    ("sweep", "spec.dependsOn.jobs: names this array, sweep, so every task would wait on the array it is part of "
              "and none could ever run; name only what the array waits on"),
    # new60 N5: sweep-1 failed as a cycle of one, and sweep-0 and sweep-2 waited on it for ever (it exists, Failed)
    # while the array read Running
    ("sweep-1", "spec.dependsOn.jobs: names sweep-1, a task of this array: every task copies spec.dependsOn, so "
                "sweep-1 would wait on itself and the others on it, and none could ever run; name only what the "
                "array waits on"),
])
def test_an_array_whose_dependson_names_itself_or_its_own_task_is_refused_and_makes_no_task(named: str,
                                                                                            message: str) -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            array = api.create(FEDERATED_JOBS, {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                                "metadata": {"name": "sweep"},
                                                "spec": {**TRAIN, "array": {"indices": "0-2"},
                                                         "dependsOn": {"jobs": ["prep", named]}}}, "research")
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            assert sorted(n for _, n in api.objects) == ["sweep"] and not fed.jobs
            status = api.objects[("research", "sweep")]["status"]
            assert (status["phase"], status["message"]) == ("Failed", message)

    asyncio.run(main())


def test_a_dependent_naming_the_array_id_is_submitted_once_every_task_is_accepted() -> None:
    """The id (status.arrayId) is no FederatedJob's name: before, the dependent waited for "FederatedJob
    sweep-..., which does not exist" and was refused 10 minutes on, though the docs said it waits on the array."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            array = make_sweep(api)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            array_id = array_id_of(array)
            federated_job(api, "merge", {**TRAIN, "dependsOn": {"jobs": [array_id]}})
            await reconcile(ctl, api, TASKS[0])
            await reconcile(ctl, api, "merge")
            assert not fed.jobs.named("merge")
            assert api.objects[("research", "merge")]["status"]["pendingReason"]["message"] == \
                "waiting for every task of array sweep to be accepted"
            for name in TASKS[1:]:
                await reconcile(ctl, api, name)
            await reconcile(ctl, api, "merge")
            job = fed.get("merge")
            assert job is not None and job.spec.depends_on is not None and job.spec.depends_on.jobs == (array_id,)
            assert job.waiting_on

    asyncio.run(main())


def test_two_arrays_naming_each_other_are_refused_every_task_naming_the_cycle() -> None:
    """Each task waits unsubmitted until every task of the other array is accepted: before, for ever."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            for me, other in (("ring-a", "ring-b"), ("ring-b", "ring-a")):
                made = api.create(FEDERATED_JOBS, {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                                   "metadata": {"name": me},
                                                   "spec": {**TRAIN, "array": {"indices": "0-1"},
                                                            "dependsOn": {"jobs": [other]}}}, "research")
                seen(ctl, api)
                await ctl.reconcile("ADDED", made)
            tasks = ["ring-a-0", "ring-b-0", "ring-a-1", "ring-b-1"]
            for _ in range(2):  # judged, then judged again as the cycle's others are requeued
                for name in tasks:
                    if (api.objects[("research", name)].get("status") or {}).get("phase") != "Failed":
                        await reconcile(ctl, api, name)
            assert not fed.jobs  # no task submitted
            messages = {n: api.objects[("research", n)]["status"]["message"] for n in tasks}
            assert {n: api.objects[("research", n)]["status"]["phase"] for n in tasks} == dict.fromkeys(tasks, "Failed")
            assert set(messages.values()) == {"spec.dependsOn.jobs: a cycle, ring-b -> ring-a -> ring-b: none of them "
                                              "could ever run; take one of the names out"}, messages

    asyncio.run(main())


def test_a_grpc_submit_after_an_array_still_being_accepted_waits_on_every_task_of_it() -> None:
    """`federator submit --after ARRAY_ID` (a Submit, not an object: nothing holds it back) while a task of the
    array is still to be accepted: it waits on that task too, as a FederatedJob naming the array does. Before, it
    remembered the two tasks accepted so far and ran once those two had succeeded, the third not even accepted."""
    from federator.jobfile import parse_job

    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            array = make_sweep(api)
            seen(ctl, api)
            await ctl.reconcile("ADDED", array)
            array_id = array_id_of(array)
            for name in TASKS[:2]:
                await reconcile(ctl, api, name)
            spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                              "metadata": {"name": "merge", "namespace": "research"},
                              "spec": {**TRAIN, "dependsOn": {"jobs": [array_id]}}})
            job = await fed.submit_async(spec)
            assert job.spec.depends_on is not None and job.spec.depends_on.jobs == (array_id,)
            await end_tasks(fed, {"sweep-0": JobPhase.SUCCEEDED, "sweep-1": JobPhase.SUCCEEDED})
            await settled(lambda: all(fed.get(n).phase is JobPhase.SUCCEEDED for n in TASKS[:2]))
            await fed.journal.commit([fed.get("sweep-1")])  # after the ends' writes, which judge the dependents
            await asyncio.sleep(0.1)
            assert job.waiting_on and job.phase is JobPhase.PENDING  # sweep-2 is still to come
            assert job.pending_reason is not None
            assert f"every task of array {array_id} (3 tasks, 1 not accepted yet)" in job.pending_reason.message

            await reconcile(ctl, api, TASKS[2])  # accepted now: waited on as the others were
            assert f"every task of array {array_id} (3 tasks)" in job.pending_reason.message
            fed.schedule_once()
            assert fed.get("sweep-2").phase is JobPhase.PLACED and not job.placements
            fed.job_update(fed.clusters["east-1"], fed.get("sweep-2").placements[0].placement_id,
                           JobPhase.SUCCEEDED, "")
            await settled(lambda: not job.waiting_on)
            fed.schedule_once()
            assert job.phase is JobPhase.PLACED

    asyncio.run(main())
