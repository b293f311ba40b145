"""Fakes of the Kubernetes API server for unit tests (importable as `kube_fakes`)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from federator.backends.kube.api import MEMBER_CLUSTERS, ConflictError, KubeError, NotFoundError
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.cancel_records import ANNOTATION as CANCELS

from builders import cluster, pool


class FlakyApi:
    """FederatedJobs in memory behind an API server that can be away (`away`: the error every request meets)."""

    server = "https://host.invalid"

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.away: KubeError | None = None
        self.writes = 0
        self.namespaces: set[str] | None = None  # the namespaces there are (None: any)
        self.uids = 0  # objects ever created: a new object never reuses a deleted one's uid

    def _reach(self) -> None:
        if self.away is not None:
            raise self.away

    def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        self._reach()
        return {"metadata": {"resourceVersion": "1"}, "items": copy.deepcopy(list(self.objects.values()))}

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        self._reach()
        if (str(namespace), name) not in self.objects:
            raise NotFoundError(404, f"{name} not found")
        return copy.deepcopy(self.objects[(str(namespace), name)])

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None, *,
               strict: bool = False) -> dict[str, Any]:
        self._reach()
        if self.namespaces is not None and namespace not in self.namespaces:
            raise NotFoundError(404, f'namespaces "{namespace}" not found', reason="NotFound")
        if (str(namespace), body["metadata"]["name"]) in self.objects:  # names are unique, as on an API server
            raise ConflictError(409, f'federatedjobs.federator.io "{body["metadata"]["name"]}" already exists',
                                reason="AlreadyExists")
        obj = copy.deepcopy(body)
        obj["metadata"].update(namespace=namespace, uid=f"uid-{self.uids}", generation=1,
                               resourceVersion="1")
        self.uids += 1
        self.objects[(str(namespace), obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        self._reach()
        obj = self.objects[(str(namespace), name)]
        if subresource == "status":
            obj["status"] = body["status"]
        else:
            obj["metadata"].update(body.get("metadata") or {})
            if body.get("spec") and {**obj["spec"], **body["spec"]} != obj["spec"]:  # a spec change: a generation
                obj["spec"].update(body["spec"])
                obj["metadata"]["generation"] += 1
        self.writes += 1
        return copy.deepcopy(obj)


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    """A JSON merge patch, as the API server applies it (null removes)."""
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        else:
            into[key] = value


class HostApi(FlakyApi):
    """FlakyApi's FederatedJobs, and MemberClusters beside them."""

    def __init__(self) -> None:
        super().__init__()
        self.members: dict[str, dict[str, Any]] = {}

    def list(self, res: Any, namespace: str | None = None, **kw: Any) -> dict[str, Any]:
        if res == MEMBER_CLUSTERS:
            self._reach()
            return {"metadata": {"resourceVersion": "1"}, "items": copy.deepcopy(list(self.members.values()))}
        return super().list(res, namespace, **kw)

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None, **kw: Any) -> dict[str, Any]:
        if res == MEMBER_CLUSTERS:
            self._reach()
            self.members[body["metadata"]["name"]] = copy.deepcopy(body)
            return copy.deepcopy(body)
        return super().create(res, body, namespace, **kw)

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        if res == MEMBER_CLUSTERS:
            self._reach()
            if name not in self.members:
                raise NotFoundError(404, f"memberclusters {name} not found")
            _merge(self.members[name], copy.deepcopy(body))
            return copy.deepcopy(self.members[name])
        if (str(namespace), name) not in self.objects:
            raise NotFoundError(404, f"federatedjobs {name} not found")
        return super().patch(res, name, body, namespace, subresource=subresource)

    def record(self, name: str, annotation: str = CANCELS) -> str | None:
        """MemberCluster `name`'s annotation (by default its record of cancels not confirmed), None without it."""
        return ((self.members.get(name, {}).get("metadata") or {}).get("annotations") or {}).get(annotation)


def federated_job(api: FlakyApi, name: str, spec: dict[str, Any], *, namespace: str = "research",
                  finalizers: list[str] | None = None) -> dict[str, Any]:
    """A FederatedJob created in `api` (with the controller's finalizer unless `finalizers` says otherwise)."""
    from federator.backends.kube.api import FEDERATED_JOBS
    from federator.backends.kube.resources import FINALIZER
    return api.create(FEDERATED_JOBS, {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                       "metadata": {"name": name, "finalizers": [FINALIZER] if finalizers is None
                                                    else finalizers},
                                       "spec": spec}, namespace)


@contextlib.asynccontextmanager
async def controller(api: FlakyApi, *, limits: Any = None, events: Any = None,
                     workers: bool = False) -> AsyncIterator[tuple[Any, Any]]:
    """A Federator on a KubeJobStore over `api` and its FederatedJob controller (retrying after 0.05 s),
    with the controller's workers running if `workers`: (federator, controller)."""
    from federator.backends.kube.controller import FederatedJobController
    from federator.backends.kube.store import KubeJobStore
    from federator.server.federator import Federator
    store = KubeJobStore(api, events=events)  # type: ignore[arg-type]
    fed = Federator(store=store, limits=limits)
    ctl = FederatedJobController(fed, api, store)  # type: ignore[arg-type]
    ctl.retry_seconds = 0.05
    tasks = [asyncio.ensure_future(ctl._work(q)) for q in ctl._queues] if workers else []
    try:
        yield fed, ctl
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


H100 = "NVIDIA-H100-80GB-HBM3"
GANG = {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 8}}  # one node of `room`'s


def room(name: str = "member-a", *, nodes: int = 2) -> Any:
    """A member's report (ClusterCapacity) of `nodes` nodes of 8 free H100s each in region east, running nothing."""
    return replace(cluster(name, "east", pool(H100, nodes=nodes, free=8)).capacity, placement_ids=frozenset())


async def placed_on_member_a(api: FlakyApi, fed: Any, ctl: Any, name: str, spec: dict[str, Any],
                             room: Any) -> tuple[Any, str]:
    """The start of the controller's deletion tests: the members adopted, member-a connected with `room` (its
    ClusterCapacity) and its MemberCluster written, and `name`, a FederatedJob of `spec`, created and placed on it.
    (member-a's ClusterRecord, the job's one placement id)."""
    await ctl.adopt_members()
    rec = fed.connect(cluster="member-a", region="east", labels={})
    fed.report(rec, room)
    await ctl.write_members()
    await ctl.reconcile("ADDED", federated_job(api, name, spec))
    fed.schedule_once()
    (pid,) = [p.placement_id for p in fed.get(name).placements]
    return rec, pid


async def running_on_member_a(api: FlakyApi, fed: Any, ctl: Any, name: str, spec: dict[str, Any],
                              room: Any) -> tuple[Any, str]:
    """`placed_on_member_a`, and the placement running."""
    from federator.model import JobPhase
    rec, pid = await placed_on_member_a(api, fed, ctl, name, spec, room)
    fed.job_update(rec, pid, JobPhase.RUNNING, "")
    return rec, pid


async def kubectl_delete(api: FlakyApi, ctl: Any, name: str, *, modified: int = 3,
                         each: Callable[[], object] = lambda: None, namespace: str = "research") -> dict[str, Any]:
    """`kubectl delete fj NAME` as the controller hears it: the object's deletionTimestamp set, `modified` MODIFIED
    events of it (the deletionTimestamp, then the cancel's status writes), and DELETED once the finalizer went;
    `each` after every event (an agent's stream taking its orders). The object gone."""
    obj = api.objects[(namespace, name)]
    obj["metadata"]["deletionTimestamp"] = "2026-12-07T16:10:25Z"
    for _ in range(modified):
        await ctl.reconcile("MODIFIED", copy.deepcopy(obj))
        each()
    gone = api.objects.pop((namespace, name))
    await ctl.reconcile("DELETED", gone)
    each()
    return gone


class RecordingApi:
    """A member's API server that creates whatever it is given (each object its own uid) and records it: what a
    launch made, or that it made nothing."""

    server = "fake"

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.created.append(body)
        return {**body, "metadata": {**body["metadata"], "uid": f"uid-{len(self.created)}"}}


def started_backend(api: Any, **kw: Any) -> KubeBackend:
    """A Kubernetes agent's backend over `api`, as started (its launches run; its updates go nowhere), for the
    cluster member-a and the workloads namespace w unless `kw` says otherwise."""
    b = KubeBackend(api, **{"namespace": "w", "cluster": "member-a", **kw})
    b._on_update = lambda *_, **__: None
    b._started = True
    return b


class Events:
    """The Events a controller posts (the store's EventRecorder), kept to be read back."""

    instance = "fed-0"

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []

    def record(self, obj: dict[str, Any]) -> None:
        self.posted.append(obj)

    def said(self) -> list[tuple[str, str, str]]:
        """(object name, reason, message) of each Event, in order."""
        return [(e["involvedObject"]["name"], e["reason"], e["message"]) for e in self.posted]

    def told(self, reason: str) -> list[str]:
        """The messages of the Events of one reason."""
        return [str(e.get("message")) for e in self.posted if e.get("reason") == reason]

