"""`kubectl scale fj` (a changed spec.replicas) is the gRPC API's Scale, and a gRPC Scale reaches the FederatedJob.

- The controller turns a changed spec.replicas of a known job into `Federator.scale` (server/scaling.py); the
  status then says the new generation is observed, and the store writes no spec back.
- A scale the federator refuses is a Warning Event `ScaleRefused` naming the field, once per generation, and the
  condition Accepted=False; the job keeps its count, the object's spec.replicas is left as written (never set
  back: a GitOps tool applying it again fought the federator, outside QA G4), and a leader that loads the object
  rebuilds the job at its accepted count (status.accepted), without saying the refusal again.
- A job scaled over gRPC in Kubernetes mode gets its FederatedJob's spec.replicas written (before its status), so
  kubectl, the object and a leader that loads it agree with the job; an event of the object from before that
  write is stale, not a scale back.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from test_kube_refusal_events import Events

from federator.backends.kube.store import KubeJobStore
from federator.model import JobPhase
from federator.server.federator import Federator

from builders import cluster
from kube_fakes import FlakyApi, controller, federated_job

SERVE = {"kind": "inference", "replicas": 2, "regions": {"minRegions": 2}, "resources": {"cpu": "1"}}


async def submitted(api: FlakyApi, ctl: Any, fed: Federator, spec: dict[str, Any]) -> dict[str, Any]:
    obj = federated_job(api, "chat", spec)
    await ctl.reconcile("ADDED", obj)
    (job,) = fed.jobs.values()
    assert job.phase is JobPhase.PENDING
    return api.objects[("research", "chat")]


def scaled_by_kubectl(api: FlakyApi, replicas: int) -> dict[str, Any]:
    """What `kubectl scale fj chat --replicas=N` leaves: the new spec.replicas, a new generation."""
    obj = api.objects[("research", "chat")]
    obj["spec"]["replicas"] = replicas
    obj["metadata"]["generation"] += 1
    return copy.deepcopy(obj)


def test_kubectl_scale_scales_the_job_and_the_status_observes_it() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            await submitted(api, ctl, fed, SERVE)
            await ctl.reconcile("MODIFIED", scaled_by_kubectl(api, 5))
            (job,) = fed.jobs.values()
            assert job.spec.replicas == 5
            obj = api.objects[("research", "chat")]
            assert obj["metadata"]["generation"] == 2 and obj["spec"]["replicas"] == 5  # nothing written back
            assert obj["status"]["observedGeneration"] == 2 and obj["status"]["replicas"] == 0  # pending
            await ctl.reconcile("MODIFIED", copy.deepcopy(obj))  # its own status write's event: nothing to do
            assert job.spec.replicas == 5

    asyncio.run(main())


def test_a_refused_scale_is_a_warning_event_naming_the_field_said_once() -> None:
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, events=events) as (fed, ctl):
            await submitted(api, ctl, fed, SERVE)
            events.posted.clear()
            obj = scaled_by_kubectl(api, 1)  # below minRegions: the CRD takes it, the federator does not
            await ctl.reconcile("MODIFIED", obj)
            await ctl.reconcile("MODIFIED", obj)
            (job,) = fed.jobs.values()
            assert job.spec.replicas == 2
            (event,) = events.posted
            assert (event["type"], event["reason"]) == ("Warning", "ScaleRefused")
            assert event["message"].startswith("spec.replicas: not scaled to 1, the job keeps 2: replicas: 1 is "
                                               "below the job's spec.regions.minRegions (2)")
            # The object keeps the user's count; its status says the refusal, of that generation.
            live = api.objects[("research", "chat")]
            assert live["spec"]["replicas"] == 1 and live["metadata"]["generation"] == 2
            (accepted,) = [c for c in live["status"]["conditions"] if c["type"] == "Accepted"]
            assert (accepted["status"], accepted["reason"], accepted["observedGeneration"]) == (
                "False", "ScaleRefused", 2)
            assert live["status"]["observedGeneration"] == 2 and live["status"]["accepted"]["replicas"] == 2
            # A leader that loads it rebuilds the job it runs, not the refused count, and says nothing again.
            async with controller(api, events=events) as (again, ctl2):
                (loaded,) = again.jobs.values()
                assert loaded.spec.replicas == 2 and loaded.phase is not JobPhase.FAILED
                await ctl2.reconcile("MODIFIED", copy.deepcopy(api.objects[("research", "chat")]))
                assert len(events.posted) == 1 and api.objects[("research", "chat")]["spec"]["replicas"] == 1
            await ctl.reconcile("MODIFIED", scaled_by_kubectl(api, 3))  # a new count is tried again
            assert job.spec.replicas == 3
            assert [e["reason"] for e in events.posted] == ["ScaleRefused", "Scaled"]
            (accepted,) = [c for c in api.objects[("research", "chat")]["status"]["conditions"]
                           if c["type"] == "Accepted"]
            assert (accepted["status"], accepted["reason"]) == ("True", "Accepted")

    asyncio.run(main())


def test_a_grpc_scale_writes_the_federatedjobs_spec_replicas_and_a_new_leader_reads_it() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            await submitted(api, ctl, fed, SERVE)
            (job,) = fed.jobs.values()
            fed.scale(job.job_id, 4)
            obj = api.objects[("research", "chat")]
            assert obj["spec"]["replicas"] == 4 and obj["metadata"]["generation"] == 2
            assert obj["status"]["observedGeneration"] == 2
            writes = api.writes
            await ctl.reconcile("MODIFIED", copy.deepcopy(obj))  # the spec write's own event: nothing to do
            assert api.writes == writes and job.spec.replicas == 4
        again = Federator(store=KubeJobStore(api))  # type: ignore[arg-type]
        assert again.get(job.job_id).spec.replicas == 4

    asyncio.run(main())


def test_an_event_from_before_a_grpc_scale_does_not_scale_the_job_back() -> None:
    """The informer's queue may still hold the object as it was before the store wrote spec.replicas (a status
    write's event, generation 1, replicas 2): it is stale, not a user's scale back to 2."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            before = copy.deepcopy(await submitted(api, ctl, fed, SERVE))
            (job,) = fed.jobs.values()
            fed.scale(job.job_id, 4)
            await ctl.reconcile("MODIFIED", before)
            assert job.spec.replicas == 4 and api.objects[("research", "chat")]["spec"]["replicas"] == 4

    asyncio.run(main())


def test_a_scale_is_a_scaled_event_not_a_requeued_warning() -> None:
    """The replicas a scale leaves owed are its doing, not a loss: a Normal Event Scaled, no Requeued warning, and
    no Placed event for the placements the job already had."""
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, events=events) as (fed, ctl):
            await submitted(api, ctl, fed, {**SERVE, "regions": {}})
            rec = fed.connect(cluster="a", region="east", labels={})
            fed.report(rec, cluster("a", "east").capacity)
            fed.schedule_once()
            (job,) = fed.jobs.values()
            assert job.phase is JobPhase.PLACED
            events.posted.clear()
            fed.scale(job.job_id, 4)
            fed.scale(job.job_id, 1)  # its one part of 2 cannot shrink: the job is queued again for 1
            assert [(e["type"], e["reason"], e["message"]) for e in events.posted] == [
                ("Normal", "Scaled", "spec.replicas: scaled from 2 to 4; 2 of 4 replicas placed; 2 waiting"),
                ("Normal", "Scaled", "spec.replicas: scaled from 4 to 1")]

    asyncio.run(main())
