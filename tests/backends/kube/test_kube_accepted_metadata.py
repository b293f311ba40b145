"""An accepted job is what was accepted: metadata edited on its FederatedJob later is said, not applied, and never
fails it at a restart (outside QA G10; backends/kube/accepted.py).

Before, an edit of the annotation `federator.io/master-port` to "abc" on a running job (or a 65th label a CI added)
was taken without a word, and the next federator start rebuilt the job from the live metadata: the rebuild failed,
the object went Failed for good, and its running workload became an orphan that `kubectl delete` no longer stopped.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from federator.backends.kube.resources import as_accepted, job_from_resource
from federator.model import JobPhase

from builders import cluster
from kube_fakes import Events, FlakyApi, controller, federated_job

TRAIN = {"kind": "training", "replicas": 2, "resources": {"cpu": "1"}}
KEY = ("research", "mp")


def edited(api: FlakyApi, *, annotations: dict[str, str] | None = None,
           labels: dict[str, str] | None = None) -> dict[str, Any]:
    """What `kubectl annotate` / `kubectl label` leaves: new metadata, no new generation (metadata is not spec)."""
    obj = api.objects[KEY]
    obj["metadata"].setdefault("annotations", {}).update(annotations or {})
    obj["metadata"].setdefault("labels", {}).update(labels or {})
    return copy.deepcopy(obj)


async def running(api: FlakyApi, ctl: Any, fed: Any) -> Any:
    obj = federated_job(api, "mp", TRAIN)
    obj["metadata"]["annotations"] = {"federator.io/master-port": "29600"}
    api.objects[KEY]["metadata"]["annotations"] = {"federator.io/master-port": "29600"}
    await ctl.reconcile("ADDED", obj)
    rec = fed.connect(cluster="a", region="east", labels={})
    fed.report(rec, cluster("a", "east").capacity)
    fed.schedule_once()
    (job,) = fed.jobs.values()
    assert job.phase is JobPhase.PLACED and job.spec.annotation("federator.io/master-port") == "29600"
    return job


def accepted_condition(api: FlakyApi) -> dict[str, Any]:
    (c,) = [c for c in api.objects[KEY]["status"]["conditions"] if c["type"] == "Accepted"]
    return dict(c)


def test_an_invalid_annotation_on_a_running_job_is_said_not_applied_and_survives_a_restart() -> None:
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, events=events) as (fed, ctl):
            job = await running(api, ctl, fed)
            events.posted.clear()
            obj = edited(api, annotations={"federator.io/master-port": "abc"})
            await ctl.reconcile("MODIFIED", obj)
            await ctl.reconcile("MODIFIED", copy.deepcopy(api.objects[KEY]))  # its status write's own event
            assert job.phase is JobPhase.PLACED and job.spec.annotation("federator.io/master-port") == "29600"
            (event,) = events.posted
            assert (event["type"], event["reason"]) == ("Warning", "MetadataIgnored")
            assert "metadata.annotations[federator.io/master-port]: must be a port number from 1 to 65535, got " \
                   "'abc'" in event["message"] and "the job keeps the labels and annotations it was accepted " \
                   "with" in event["message"]
            cond = accepted_condition(api)
            assert (cond["status"], cond["reason"]) == ("False", "MetadataIgnored")
            assert api.objects[KEY]["status"]["accepted"]["annotations"] == {"federator.io/master-port": "29600"}

        # The federator restarts: the job is rebuilt as accepted, still placed, and nothing is said again.
        async with controller(api, events=events) as (fed2, ctl2):
            (again,) = fed2.jobs.values()
            fed2.journal.write([again])  # a status write before the controller looked at the object again
            assert accepted_condition(api)["status"] == "False"
            assert again.job_id == job.job_id and again.phase is JobPhase.PLACED
            assert again.spec.annotation("federator.io/master-port") == "29600"
            await ctl2.reconcile("ADDED", copy.deepcopy(api.objects[KEY]))
            assert fed2.get(job.job_id).phase is JobPhase.PLACED and len(events.posted) == 1
            # Put back as accepted: the condition says the job follows the object again.
            await ctl2.reconcile("MODIFIED", edited(api, annotations={"federator.io/master-port": "29600"}))
            cond = accepted_condition(api)
            assert (cond["status"], cond["reason"]) == ("True", "Accepted")

    asyncio.run(main())


def test_a_65th_label_a_ci_adds_is_kept_out_of_the_job_and_a_restart_keeps_it() -> None:
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, events=events) as (fed, ctl):
            job = await running(api, ctl, fed)
            events.posted.clear()
            await ctl.reconcile("MODIFIED", edited(api, labels={f"ci.example.com/l{i}": "x" for i in range(65)}))
            (event,) = events.posted
            assert "metadata.labels: at most 64 labels, got 65" in event["message"]
        async with controller(api, events=events) as (fed2, _):
            (again,) = fed2.jobs.values()
            assert again.job_id == job.job_id and again.phase is JobPhase.PLACED and not again.spec.labels

    asyncio.run(main())


def test_other_labels_a_gitops_tool_adds_are_not_said() -> None:
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, events=events) as (fed, ctl):
            await running(api, ctl, fed)
            events.posted.clear()
            await ctl.reconcile("MODIFIED", edited(api, labels={"app.kubernetes.io/instance": "team-a-jobs"}))
            assert not events.posted
            assert not [c for c in api.objects[KEY]["status"]["conditions"] if c["type"] == "Accepted"]

    asyncio.run(main())


def test_a_status_from_before_status_accepted_is_read_from_the_live_object() -> None:
    """A job accepted by a federator before 0.12.0 (or a status an old CRD pruned): rebuilt as before."""
    cr = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
          "metadata": {"name": "mp", "namespace": "research", "labels": {"team": "a"}},
          "spec": TRAIN, "status": {"jobId": "j-1", "phase": "Pending"}}
    assert as_accepted(cr) == cr
    job = job_from_resource(cr)
    assert job is not None and job.spec.labels == (("team", "a"),)


def test_a_job_accepted_before_status_accepted_gets_it_written_once() -> None:
    """A job a federator before 0.12.0 accepted has no status.accepted: the first look at it writes it, so an edit
    made after the upgrade is not read back as the job's at the next start."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            await running(api, ctl, fed)
            del api.objects[KEY]["status"]["accepted"]  # as a 0.11 federator left it
        async with controller(api) as (fed2, ctl2):
            writes = api.writes
            await ctl2.reconcile("ADDED", copy.deepcopy(api.objects[KEY]))
            assert api.objects[KEY]["status"]["accepted"]["annotations"] == {"federator.io/master-port": "29600"}
            await ctl2.reconcile("MODIFIED", edited(api, annotations={"federator.io/master-port": "abc"}))
        async with controller(api) as (fed3, _):
            (job,) = fed3.jobs.values()
            assert job.spec.annotation("federator.io/master-port") == "29600" and api.writes > writes

    asyncio.run(main())


def test_accepted_metadata_is_not_judged_again_by_a_stricter_federator() -> None:
    """What was accepted is taken as it is at a restart: 65 labels accepted by a federator that allowed them (or a
    check made stricter since) rebuild the job, where the live object's would be refused today."""
    labels = {f"l{i}": "x" for i in range(65)}
    cr = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
          "metadata": {"name": "mp", "namespace": "research", "labels": labels},
          "spec": TRAIN, "status": {"jobId": "j-1", "phase": "Running",
                                    "accepted": {"replicas": 2, "labels": labels, "annotations": {}}}}
    job = job_from_resource(cr)
    assert job is not None and len(job.spec.labels) == 65 and job.phase is JobPhase.RUNNING
