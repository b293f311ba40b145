"""Kubernetes Events on FederatedJobs: Placed, Preempted, Requeued, Failed, SubmitWarning, Invalid, QueueNotAllowed,
Dependency, Scaled, ScaleRefused, Moving, Moved, MoveFailed.

`kubectl describe fj NAME` and `kubectl get events` then tell a job's story
the way they do for a Pod. The job store (`store.py`) sees every durable
change of a job; `job_events` (pure) turns the change from what was last
written into Events, and `EventRecorder` posts them (core v1 Events) from a
thread of its own, best effort: an Event that cannot be written is logged and
dropped, never retried on the federator's event loop, as client-go's recorder
does.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from federator.backends.kube.api import EVENTS, KubeApi, KubeError
from federator.jobfile import API_VERSION
from federator.model import Job, JobPhase, ReasonCode, shortfall
from federator.timestamps import utc_seconds

if TYPE_CHECKING:
    from federator.backends.kube.fencing import Fence

log = logging.getLogger("federator.kube.events")

COMPONENT = "federator"
QUEUE_LIMIT = 10_000  # Events waiting to be written; more are dropped (and logged)


class EventReason(StrEnum):
    PLACED = "Placed"
    PREEMPTED = "Preempted"
    REQUEUED = "Requeued"
    FAILED = "Failed"
    QUEUE_NOT_ALLOWED = "QueueNotAllowed"  # the Queue's namespaceSelector does not select the job's namespace
    SUBMIT_WARNING = "SubmitWarning"  # accepted, but likely wrong or it will wait (SubmitResponse.warnings)
    INVALID = "Invalid"  # refused: a bad spec, a pod template over the pod security level; the message names the field
    # not submitted yet: the federator, the job's queue (maxPendingJobs) or its namespace (the owner of a
    # kubectl-made job, --max-pending-jobs-per-user) holds as many pending jobs as it may; retried
    QUEUE_FULL = "QueueFull"
    # not submitted yet: a FederatedJob its spec.dependsOn names is not accepted yet (a Warning when none of that
    # name exists); judged again when one is (dependency_waits.py)
    DEPENDENCY = "Dependency"
    # spec.replicas changed (kubectl scale) and the federator refused it (below minRegions, over its limits, a job
    # that has ended): the job keeps its count; the message names the field (server/scaling.py)
    SCALE_REFUSED = "ScaleRefused"
    # spec.held changed and the federator refused it: a job not Pending is not held, an admin's hold is not released
    # by editing the object; the job keeps its state; the message names the field (backends/kube/holds.py)
    HOLD_REFUSED = "HoldRefused"
    # a federator.io/ annotation edited, or metadata the federator would refuse now, on an accepted job: the job
    # keeps what it was accepted with (status.accepted; backends/kube/accepted.py)
    METADATA_IGNORED = "MetadataIgnored"
    SCALED = "Scaled"  # spec.replicas changed (kubectl scale, federator scale): the difference is placed or stopped
    # serving replicas moving back near their users (server/rebalancing.py): new ones placed nearer, make before break
    MOVING = "Moving"
    MOVED = "Moved"  # the new ones serve, and as many far ones were taken
    MOVE_FAILED = "MoveFailed"  # the new ones ended before they served; nothing was taken
    # a job array (spec.array) refused: a task's name NAME-INDEX is held by a FederatedJob the array does not own;
    # no task made, none overwritten (backends/kube/arrays.py)
    NAME_CLASH = "NameClash"


@dataclass(frozen=True, slots=True)
class Seen:
    """What the last status write of a job said: enough to tell what changed."""

    phase: JobPhase
    generation: int
    waiting: int = 0  # replicas a Placed or Running job is short of (server/partial.py)
    replicas: int = 0  # its spec.replicas (server/scaling.py); 0: not known
    moving: str = ""  # the rebalancer's words at the head of its message (`move_words`), "" if none


@dataclass(frozen=True, slots=True)
class JobEvent:
    reason: EventReason
    message: str
    warning: bool = False


# How server/rebalancing.py's messages begin ("moving 2 replicas from east to west, nearer your users; ..."), and
# the Event each is.
_MOVES = (("moving ", EventReason.MOVING), ("moved ", EventReason.MOVED), ("could not move ", EventReason.MOVE_FAILED))


def move_words(job: Job) -> str:
    """The rebalancer's words at the head of a job's message, or "": what a Moving, Moved or MoveFailed Event says."""
    head = job.message.split("; ")[0]
    return head if any(head.startswith(w) for w, _ in _MOVES) else ""


def seen(job: Job) -> Seen:
    return Seen(job.phase, job.generation, job.replicas_waiting, job.spec.replicas, move_words(job))


def job_events(before: Seen | None, job: Job) -> list[JobEvent]:
    """The Events for a job's change from `before` (None: never written) to its state now."""
    out: list[JobEvent] = []
    was_active = before is not None and before.phase.is_active
    scaled = before is not None and before.replicas not in (0, job.spec.replicas)
    if scaled and before is not None:  # a scale, not a loss: what is owed or re-queued is its doing
        short = shortfall(job)
        said = job.message.split("; ")[0] if job.message.startswith("scaled from ") else \
            f"scaled from {before.replicas} to {job.spec.replicas}"  # what shrank or stopped (server/shrink.py)
        out.append(JobEvent(EventReason.SCALED, f"spec.replicas: {said}" + (f"; {short}" if short else "")))
    elif job.phase.is_active and job.replicas_waiting and (before is None or not before.waiting):
        # one part of a spread job ended (its cluster Lost, refusing, failing it, or preempted): the rest serve on
        preempted = job.pending_reason is not None and job.pending_reason.code is ReasonCode.PREEMPTED
        out.append(JobEvent(EventReason.PREEMPTED if preempted else EventReason.REQUEUED, shortfall(job),
                            warning=True))
    said = move_words(job)
    if said and (before is None or before.moving != said):  # a move started, ended, or failed: said once
        step = next(r for w, r in _MOVES if said.startswith(w))
        out.append(JobEvent(step, said, warning=step is EventReason.MOVE_FAILED))
    if job.phase is JobPhase.PLACED and (before is None or before.generation != job.generation) and not scaled:
        # the placements of this generation: a spread job's parts that serve on were placed before
        new = [p for p in job.placements if p.generation == job.generation] or job.placements
        where = ", ".join(f"{p.cluster} ({p.replicas}x on {p.accelerator_model or 'CPU'})" for p in new)
        out.append(JobEvent(EventReason.PLACED, f"placed in {where}, generation {job.generation}"))
    elif job.phase is JobPhase.PENDING and was_active and not scaled:
        reason = job.pending_reason
        if reason is not None and reason.code is ReasonCode.PREEMPTED:
            out.append(JobEvent(EventReason.PREEMPTED, reason.message, warning=True))
        else:
            out.append(JobEvent(EventReason.REQUEUED, reason.message if reason else "re-queued", warning=True))
    elif job.phase is JobPhase.FAILED and (before is None or before.phase is not JobPhase.FAILED):
        out.append(JobEvent(EventReason.FAILED, job.message or "failed", warning=True))
    return out


def event_object(event: JobEvent, *, namespace: str, name: str, uid: str, now: float, instance: str) -> dict[str, Any]:
    """A core v1 Event about a FederatedJob."""
    stamp = utc_seconds(now)
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{name}.", "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": COMPONENT}},
        "involvedObject": {"apiVersion": API_VERSION, "kind": "FederatedJob", "namespace": namespace, "name": name,
                           "uid": uid},
        "reason": event.reason.value, "message": event.message[:1024],
        "type": "Warning" if event.warning else "Normal",
        "source": {"component": COMPONENT}, "reportingComponent": COMPONENT, "reportingInstance": instance[:128],
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }


class EventRecorder:
    """Posts Events from a daemon thread; `record` never blocks."""

    def __init__(self, api: KubeApi, *, instance: str = COMPONENT) -> None:
        self.api = api
        self.instance = instance
        self.written = 0
        self.dropped = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=QUEUE_LIMIT)
        # Asked before each Event is posted (fencing.py): a replica that may have lost the Lease posts none, so a
        # deposed leader's queued Events do not land beside the new leader's (outside QA haqa63 FA). None: always.
        self.fence: Fence | None = None
        self._thread: threading.Thread | None = None

    def record(self, obj: dict[str, Any]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kube-events", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait(obj)
        except queue.Full:
            self.dropped += 1
            log.warning("Event %s on %s dropped: %d waiting", obj.get("reason"),
                        obj["involvedObject"]["name"], QUEUE_LIMIT)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout`; while the fence holds), then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while (obj := self._queue.get()) is not None:
            if self.fence is not None and not self.fence.holds():
                self.dropped += 1
                self.fence.drop(f"Event {obj.get('reason')} on FederatedJob {obj['involvedObject']['name']}")
                continue
            try:
                self.api.create(EVENTS, obj, obj["metadata"]["namespace"])
                self.written += 1
            except KubeError as exc:
                self.dropped += 1
                log.warning("Event %s on FederatedJob %s/%s not written: %s", obj["reason"],
                            obj["metadata"]["namespace"], obj["involvedObject"]["name"], exc)


__all__ = ["EventReason", "EventRecorder", "JobEvent", "Seen", "event_object", "job_events", "seen"]
