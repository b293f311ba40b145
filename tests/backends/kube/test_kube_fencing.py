"""Fencing in Kubernetes mode (backends/kube/fencing.py): a replica that may have lost the Lease writes nothing.

Found by outside QA (haqa63 FA): a leader paused past its Lease, then resumed, flushed its queued FederatedJob
status writes over the new leader's on its way out (a Succeeded job set back to "Placed ... not started", which
the next leader launched again), and posted Events after it had stepped down. Two fences: by the replica's own
monotonic clock before each write (queued and held writes dropped, not flushed), and by the API server (each status
write expects the resourceVersion the store last saw; on a 409 the store writes again only if the Lease, read
afresh, is still its own, else drops the write and steps down).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from federator.backends.kube.api import EVENTS, FEDERATED_JOBS, LEASES, ConflictError, ForbiddenError, NotFoundError
from federator.backends.kube.events import EventRecorder
from federator.backends.kube.fencing import Deposed, Fence
from federator.backends.kube.leader import LeaderElector, LeaseConfig
from federator.backends.kube.store import KubeJobStore, Owner
from federator.jobfile_loading import parse_job_documents
from federator.model import Job, JobId, JobPhase
from federator.store import StoreUnavailable
from federator.timestamps import utc_micro

JOB = """
apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: pretrain, namespace: research}
spec: {kind: training, replicas: 1, resources: {cpu: "1"}}
"""
CFG = LeaseConfig(namespace="federator-system", name="federator", identity="fed-a", lease_duration=15.0,
                  renew_deadline=10.0, retry_period=2.0)
WALL = 1_800_000_000.0


class Host:
    """FederatedJobs, a Lease and Events behind an API server that checks a patch's uid and resourceVersion
    preconditions (409 on either, as a real one does) and moves the version at each write."""

    server = "https://host.invalid"

    def __init__(self) -> None:
        self.version = 10
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.lease: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []
        self.patches: list[dict[str, Any]] = []  # status patch bodies sent

    def _next(self) -> str:
        self.version += 1
        return str(self.version)

    def add(self, name: str, status: dict[str, Any]) -> None:
        self.jobs[("research", name)] = {
            "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": name, "namespace": "research", "uid": f"uid-{name}", "generation": 1,
                         "resourceVersion": self._next(), "finalizers": ["federator.io/job"]},
            "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}}, "status": status}

    def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": str(self.version)}, "items": copy.deepcopy(list(self.jobs.values()))}

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        if res is LEASES:
            if self.lease is None:
                raise NotFoundError(404, "not found")
            return copy.deepcopy(self.lease)
        if (str(namespace), name) not in self.jobs:
            raise NotFoundError(404, f"{name} not found")
        return copy.deepcopy(self.jobs[(str(namespace), name)])

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None, **_: Any) -> dict[str, Any]:
        assert res is EVENTS
        self.events.append(body)
        return body

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        assert res is FEDERATED_JOBS
        obj = self.jobs[(str(namespace), name)]
        meta = body.get("metadata") or {}
        if meta.get("uid") not in (None, obj["metadata"]["uid"]):
            raise ConflictError(409, "Precondition failed: UID", reason="Conflict")
        if meta.get("resourceVersion") not in (None, obj["metadata"]["resourceVersion"]):
            raise ConflictError(409, "the object has been modified; please apply your changes to the latest "
                                     "version and try again", reason="Conflict")
        if subresource == "status":
            self.patches.append(copy.deepcopy(body))
            obj["status"] = {**obj["status"], **body["status"]}
        obj["metadata"]["resourceVersion"] = self._next()
        return copy.deepcopy(obj)

    def leads(self, identity: str, renewed: float) -> None:
        self.lease = {"metadata": {"name": CFG.name, "namespace": CFG.namespace, "resourceVersion": "1"},
                      "spec": {"holderIdentity": identity, "leaseDurationSeconds": 15,
                               "renewTime": utc_micro(renewed)}}


class Replica:
    """One federator replica's store and Events, its Lease held by a real elector on a clock the test moves."""

    def __init__(self, host: Host) -> None:
        self.mono = 100.0
        self.elector = LeaderElector(host, CFG, monotonic=lambda: self.mono, wall=lambda: WALL + self.mono)  # type: ignore[arg-type]
        self.elector.leading, self.elector.last_renew = True, self.mono  # as `acquire` leaves it
        self.fence = Fence(self.elector)
        self.lost: list[bool] = []
        self.fence.on_lost = lambda: self.lost.append(True)
        self.events = EventRecorder(host)  # type: ignore[arg-type]
        self.events.fence = self.fence
        self.store = KubeJobStore(host, events=self.events, fence=self.fence, clock=lambda: WALL + self.mono)  # type: ignore[arg-type]
        host.leads(CFG.identity, WALL + self.mono)


def job(phase: JobPhase = JobPhase.PENDING, generation: int = 0) -> Job:
    spec = parse_job_documents(JOB)[0]
    return Job(JobId("pretrain-1"), spec, submitted_at=WALL, phase=phase, generation=generation)


def loaded(host: Host) -> Replica:
    """A leader that wrote the job once and loaded it back (the object's status is its own)."""
    host.add("pretrain", {})
    replica = Replica(host)
    replica.store.expect(Owner("research", "pretrain", "uid-pretrain"))
    replica.store.seen_version("uid-pretrain", host.jobs[("research", "pretrain")]["metadata"]["resourceVersion"])
    replica.store.put([job()])
    return replica


def test_each_status_write_carries_the_version_last_seen_and_learns_the_next_from_its_answer() -> None:
    host = Host()
    replica = loaded(host)
    first = host.patches[-1]["metadata"]
    assert first == {"uid": "uid-pretrain", "resourceVersion": "11"}
    replica.store.put([job(JobPhase.PLACED, generation=1)])
    assert host.patches[-1]["metadata"]["resourceVersion"] == "12"  # its own write's answer, not a 409
    replica.store.seen_version("uid-pretrain", "5")  # a late watch event of an older version: not moved back
    replica.store.put([job(JobPhase.RUNNING, generation=1)])
    assert host.patches[-1]["metadata"]["resourceVersion"] == "13"
    assert host.jobs[("research", "pretrain")]["status"]["phase"] == "Running"


def test_a_stale_write_refused_by_the_api_server_is_dropped_when_the_lease_is_another_replicas() -> None:
    host = Host()
    replica = loaded(host)
    # Paused after its clock check (still within its renew deadline by that clock): meanwhile fed-b took the
    # Lease and wrote the job Succeeded.
    host.leads("fed-b", WALL + replica.mono + 20)
    obj = host.jobs[("research", "pretrain")]
    obj["status"] = {**obj["status"], "phase": "Succeeded", "jobId": "pretrain-1"}
    obj["metadata"]["resourceVersion"] = host._next()
    sent = len(host.patches)
    with pytest.raises(Deposed) as err:  # the caller hears UNAVAILABLE: nothing acknowledged
        replica.store.put([job(JobPhase.PLACED, generation=1)])
    assert isinstance(err.value, StoreUnavailable)
    assert "no longer holds the leader Lease" in str(err.value)
    assert host.jobs[("research", "pretrain")]["status"]["phase"] == "Succeeded"  # the new leader's stands
    assert len(host.patches) == sent
    assert replica.fence.deposed and replica.lost == [True]  # it steps down
    with pytest.raises(Deposed):  # and sends nothing more, whatever its clock says
        replica.store.put([job(JobPhase.RUNNING, generation=1)])
    assert len(host.patches) == sent


def test_a_write_refused_for_a_newer_object_is_sent_again_while_the_lease_is_still_its_own() -> None:
    host = Host()
    replica = loaded(host)
    obj = host.jobs[("research", "pretrain")]
    obj["metadata"]["resourceVersion"] = host._next()  # a user's label edit the informer has not shown yet
    host.leads(CFG.identity, WALL + replica.mono)  # renewed just now
    replica.store.put([job(JobPhase.PLACED, generation=1)])
    assert host.jobs[("research", "pretrain")]["status"]["phase"] == "Placed"
    assert not replica.fence.deposed and replica.lost == []


def test_past_its_renew_deadline_a_replica_sends_nothing_and_drops_what_was_queued_and_held() -> None:
    host = Host()
    replica = loaded(host)
    replica.store.put([job(JobPhase.PLACED, generation=1)])  # a Placed Event queued
    replica.mono += CFG.renew_deadline + 5  # a SIGSTOP past the Lease: the monotonic clock ran on
    sent = len(host.patches)
    with pytest.raises(Deposed):
        replica.store.put([job(JobPhase.RUNNING, generation=1)])
    replica.store.close()  # the stop path: nothing flushed, the Events not posted
    assert len(host.patches) == sent
    assert host.jobs[("research", "pretrain")]["status"]["phase"] == "Placed"
    assert host.events == [] and replica.events.dropped >= 1
    assert replica.fence.dropped >= 2


def test_held_writes_are_dropped_not_flushed_once_the_lease_may_be_lost() -> None:
    host = Host()
    replica = loaded(host)
    real = host.patch

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise ForbiddenError(403, "federatedjobs/status is forbidden", reason="Forbidden")

    host.patch = refused  # type: ignore[method-assign]
    replica.store.put([job(JobPhase.PLACED, generation=1)])  # held for a retry (a 403 is not the server away)
    assert replica.store.unwritten() == {"forbidden": 1}
    host.patch = real  # type: ignore[method-assign]
    replica.elector.leading = False  # the renewals found another holder
    replica.store.close()  # "one last try of every held write": not by a replica that lost the Lease
    assert host.jobs[("research", "pretrain")]["status"].get("phase") != "Placed"
    assert replica.store.unwritten() == {}


def test_without_leader_election_the_fence_always_holds() -> None:
    fence = Fence(None)
    assert fence.holds() and fence.confirm()
    fence.step_down("test")
    assert not fence.holds()
