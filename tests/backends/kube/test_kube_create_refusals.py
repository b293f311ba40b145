"""A training gang whose pods the member refuses to create (a ResourceQuota, a LimitRange, an admission webhook)
is refused at once in the member's words (outside provider QA F6): before, the user read "0 of 2 replicas running"
and, two minutes later, "gang timeout ... 0 of 2 pods bound", the word "quota" nowhere. The Job controller says
it only in a Warning Event on the Job, reason FailedCreate; the backend is driven through its informers."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import pytest

from federator.backends.kube.api import NotFoundError
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.create_refusals import FAILED_CREATE_SELECTOR
from federator.backends.kube.informer import ADDED, MODIFIED
from federator.backends.kube.workloads import adapter_for, build_workload
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

PID = "pretrain-35cc13.g1.member-b"
QUOTA = ('Error creating: pods "pretrain-35cc13-g1-member-b-0-x7k2p" is forbidden: exceeded quota: provider-cap, '
         'requested: requests.nvidia.com/gpu=8, used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=4')
SPEC = JobSpec(name="pretrain", kind=JobKind.TRAINING, replicas=2, resources=Resources(cpu_milli=1000))
JOBSET = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "pretrain"},
          "spec": {"replicatedJobs": [{"name": "workers", "replicas": 1, "template": {"spec": {
              "parallelism": 2, "completions": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [
                  {"name": "w", "image": "trainer"}]}}}}}]}}

Update = tuple[str, JobPhase, str]


class _Api:
    server = "fake"

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.listed: list[tuple[str, str | None]] = []

    def list(self, res: Any, namespace: str | None = None, **kw: Any) -> dict[str, Any]:
        self.listed.append((res.plural, kw.get("field_selector")))
        return {"metadata": {"resourceVersion": "1"}, "items": []}

    def delete(self, res: Any, name: str, namespace: str | None = None, *, propagation: str = "Background") -> None:
        self.deleted.append(f"{res.plural}/{name}")


def _backend(api: _Api) -> tuple[KubeBackend, list[Update], list[str]]:
    b = KubeBackend(api, namespace="w", cluster="member-b")  # type: ignore[arg-type]
    updates: list[Update] = []
    stopped: list[str] = []
    b._on_update = lambda pid, phase, message, **_: updates.append((pid, phase, message))
    b.count_stops(stopped.append)
    b._started = True
    return b, updates, stopped


def _workload(spec: JobSpec = SPEC) -> dict[str, Any]:
    placement = Placement(PlacementId(PID), JobId("pretrain-35cc13"), "member-b", "eu", 2, "", 1)
    obj = build_workload(placement, spec, namespace="w")
    obj["metadata"]["uid"] = "wl-uid"
    return obj


def _event(job: str, message: str = QUOTA, *, uid: str = "") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{job}.1", "namespace": "w"},
            "involvedObject": {"kind": "Job", "namespace": "w", "name": job, **({"uid": uid} if uid else {})},
            "reason": "FailedCreate", "type": "Warning", "message": message, "count": 3}


async def _settle(b: KubeBackend) -> None:
    while b._retries:
        await asyncio.wait(set(b._retries))
    await b.stop()


@pytest.mark.parametrize("kind", ["Job", "JobSet"])
def test_a_gang_whose_pods_a_quota_forbids_is_refused_at_once_in_the_members_words(kind: str) -> None:
    api = _Api()
    b, updates, stopped = _backend(api)
    wl = _workload(SPEC if kind == "Job" else replace(SPEC, workload_json=json.dumps(JOBSET)))
    name = wl["metadata"]["name"]
    job = name if kind == "Job" else f"{name}-workers-0"  # a JobSet's pods are its child Jobs'

    async def run() -> None:
        b._workload_informer(adapter_for(wl))._apply_event(ADDED, wl)
        assert updates[-1][1] is JobPhase.PLACED
        b.refusals.informer._apply_event(ADDED, _event(job, uid="wl-uid" if kind == "Job" else ""))
        await _settle(b)

    asyncio.run(run())
    assert updates[-1] == (PID, JobPhase.CANCELLED, f"refused: the member refuses to create its pods (Job w/{job}, "
                                                    f"FailedCreate): {QUOTA}")
    assert stopped == ["create_forbidden"]
    assert api.deleted and api.deleted[-1].endswith(f"/{name}")


def test_an_event_seen_before_the_job_refuses_it_once_the_job_is_seen() -> None:
    """The Event watch may be ahead of the Job watch: the Job is judged on the Events seen when it comes in."""
    api = _Api()
    b, updates, stopped = _backend(api)
    wl = _workload()

    async def run() -> None:
        b.refusals.informer._apply_event(ADDED, _event(wl["metadata"]["name"]))
        assert not updates
        b.jobs._apply_event(ADDED, wl)
        await _settle(b)

    asyncio.run(run())
    assert updates[-1][1] is JobPhase.CANCELLED and "exceeded quota: provider-cap" in updates[-1][2]
    assert stopped == ["create_forbidden"]


@pytest.mark.parametrize(("message", "uid", "running"), [
    ('Error creating: Internal error occurred: failed calling webhook "quota.example.com": connection refused',
     "", False),
    (QUOTA, "an-earlier-job-of-that-name", False),
    (QUOTA, "", True),
], ids=["webhook-unreachable", "another-uid", "running-gang"])
def test_what_does_not_refuse_a_placement(message: str, uid: str, running: bool) -> None:
    """A webhook that could not be called passes (the controller retries, the gang timeout bounds it); an Event of
    an earlier Job of the name is not this one's; a gang that runs is not judged on a pod it could not recreate."""
    api = _Api()
    b, updates, stopped = _backend(api)
    wl = _workload()
    b.jobs._apply_event(ADDED, wl)
    if running:
        tmpl = wl["spec"]["template"]["metadata"]
        for i, node in enumerate(("gpu-a", "gpu-b")):
            b.pods._apply_event(ADDED, {"metadata": {"name": f"p{i}", "namespace": "w", **tmpl},
                                        "spec": {"nodeName": node}, "status": {"phase": "Running"}})
        assert updates[-1][1] is JobPhase.RUNNING
    b.refusals.informer._apply_event(ADDED, _event(wl["metadata"]["name"], message, uid=uid))
    b.refusals.informer._apply_event(MODIFIED, _event(wl["metadata"]["name"], message, uid=uid))
    assert updates[-1][1] is not JobPhase.CANCELLED
    assert not stopped and not api.deleted


def test_the_event_watch_asks_the_api_server_for_failed_creates_on_jobs_only() -> None:
    api = _Api()
    b, _, _ = _backend(api)
    assert b.refusals.readable()
    assert ("events", FAILED_CREATE_SELECTOR) in api.listed
    assert FAILED_CREATE_SELECTOR == "involvedObject.kind=Job,reason=FailedCreate"


def test_watching_every_namespace_the_agent_keeps_the_events_of_its_own_namespaces_only() -> None:
    """Per queue the watch spans the cluster: a FailedCreate of a provider's own Job elsewhere is not held."""
    b = KubeBackend(_Api(), namespace="w", cluster="member-b", namespace_per_queue=True)  # type: ignore[arg-type]
    for namespace in ("w-research", "team-x", "w"):
        b.refusals.informer._apply_event(ADDED, {**_event("j"), "metadata": {"name": "j.1", "namespace": namespace}})
    assert sorted(k.split("/")[0] for k in b.refusals.informer.cache) == ["w", "w-research"]


class _Member(_Api):
    """A member's API server as a starting agent lists it: a gang's Job, and the FailedCreate Events the Job
    controller wrote on it before the agent (re)started; watches that bring nothing new."""

    def __init__(self, listed: dict[str, list[dict[str, Any]]]) -> None:
        super().__init__()
        self.items = listed

    def list(self, res: Any, namespace: str | None = None, **kw: Any) -> dict[str, Any]:
        super().list(res, namespace, **kw)
        return {"metadata": {"resourceVersion": "1"}, "items": [dict(o) for o in self.items.get(res.plural, [])]}

    def watch(self, res: Any, namespace: str | None = None, **_: Any) -> Any:
        time.sleep(0.05)  # the server ends an idle watch; the informer asks again
        return iter(())

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        return {"metadata": {"name": name}}

    def request(self, method: str, path: str, **_: Any) -> Any:
        raise NotFoundError(404, f"{path} not found", reason="NotFound")


def test_a_restarted_agent_refuses_a_gang_on_a_failed_create_said_before_it_started() -> None:
    """The Event came before the restart, and the member says no more (its spam filter, or a slow retry): the
    agent judges the Events it lists at start once it has started (before, only a new Event or the gang timeout,
    which names no quota, ended the gang)."""
    wl = _workload()
    api = _Member({"jobs": [wl], "events": [_event(wl["metadata"]["name"], uid="wl-uid")]})
    b = KubeBackend(api, namespace="w", cluster="member-b", sync_timeout=10)  # type: ignore[arg-type]
    updates: list[Update] = []
    stopped: list[str] = []
    b.count_stops(stopped.append)

    async def run() -> None:
        await b.start(lambda pid, phase, message, **_: updates.append((pid, phase, message)))
        await _settle(b)

    asyncio.run(run())
    assert updates and updates[-1] == (PID, JobPhase.CANCELLED, "refused: the member refuses to create its pods "
                                       f"(Job w/{wl['metadata']['name']}, FailedCreate): {QUOTA}")
    assert stopped == ["create_forbidden"]
    assert f"jobs/{wl['metadata']['name']}" in api.deleted
