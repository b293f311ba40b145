"""spec.held set on a FederatedJob the federator may not hold (it is not Pending) or released by an edit over an
admin's hold: a Warning Event `HoldRefused` naming the field, said once per generation; the job keeps its state and
the object is left as written (backends/kube/holds.py)."""

from __future__ import annotations

import asyncio
import copy

from federator.model import JobPhase
from federator.server.job_holds import Actor, hold_async

from builders import cluster, pool
from kube_fakes import Events, FlakyApi, controller, federated_job

TRAIN = {"kind": "training", "resources": {"cpu": "1"}}


def edited(api: FlakyApi, name: str, held: bool) -> dict[str, object]:
    """What `kubectl patch fj NAME -p '{"spec":{"held":...}}'` leaves: the new spec.held, a new generation."""
    obj = api.objects[("research", name)]
    obj["spec"]["held"] = held
    obj["metadata"]["generation"] += 1
    return copy.deepcopy(obj)


def test_spec_held_on_a_placed_job_is_refused_with_one_warning_event_and_the_job_runs_on() -> None:
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, events=events) as (fed, ctl):
            await ctl.reconcile("ADDED", federated_job(api, "runs", TRAIN))
            (job,) = fed.jobs.values()
            fed.report(fed.connect(cluster="east-1", region="east", labels={}),
                       cluster("east-1", "east", pool("NVIDIA-H100", nodes=1)).capacity)
            fed.schedule_once()
            assert job.phase is JobPhase.PLACED
            events.posted.clear()
            obj = edited(api, "runs", True)
            await ctl.reconcile("MODIFIED", obj)
            await ctl.reconcile("MODIFIED", obj)  # the same generation again: not said again
            assert job.hold is None and job.phase is JobPhase.PLACED
            (event,) = events.posted
            assert (event["type"], event["reason"]) == ("Warning", "HoldRefused")
            assert event["message"] == (f"spec.held: not held: job {job.job_id} is Placed: only a Pending job may "
                                        "be held; it holds room in a member cluster and keeps it (cancel it to stop "
                                        "it; a hold never stops work that runs)")
            assert api.objects[("research", "runs")]["spec"]["held"] is True  # left as written

    asyncio.run(main())


def test_an_admins_hold_is_not_released_by_editing_the_object() -> None:
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, events=events) as (fed, ctl):
            await ctl.reconcile("ADDED", federated_job(api, "waits", TRAIN))
            (job,) = fed.jobs.values()
            await hold_async(fed, job, Actor("admin", admin=True))  # what JobService.Hold runs
            assert api.objects[("research", "waits")]["spec"]["held"] is True  # written by the store
            events.posted.clear()
            await ctl.reconcile("MODIFIED", edited(api, "waits", False))
            assert job.hold is not None and job.hold.admin
            (event,) = events.posted
            assert event["reason"] == "HoldRefused" and event["message"].startswith(
                f"spec.held: not released: job {job.job_id} was held by admin admin at ")
            held = edited(api, "waits", True)  # set back: the job is held as it is, nothing to say
            await ctl.reconcile("MODIFIED", held)
            assert job.hold is not None and len(events.posted) == 1

    asyncio.run(main())
