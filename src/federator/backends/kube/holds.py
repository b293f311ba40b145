"""A FederatedJob's spec.held: holding and releasing a waiting job with kubectl (server/job_holds.py says what a
hold is).

Why the object's spec: a Kubernetes user holds and releases declaratively, as they suspend a batch/v1 Job
(`kubectl patch fj NAME --type=merge -p '{"spec":{"held":true}}'`, or a GitOps tool's manifest). Not `suspend`: a
Job's suspend stops running pods, and a hold never stops work that runs (a Placed or Running job is refused).

How it is read: the store keeps what each job's object says of spec.held as last known (`KubeJobStore.spec_held`:
read at a start as the job's own state, written when the gRPC API holds or releases the job, set when the controller
sees a change). A FederatedJob whose spec.held differs from that is a user's change: held or released with the
rights of its namespace, the tenant in Kubernetes mode (whoever may edit the object may hold it: the API server's
RBAC decided). An admin's hold (JobHold.admin, set over the gRPC API) is not released this way: a Warning Event
HoldRefused says so, as it does for spec.held on a job that is not Pending; the object is left as written (never
set back, as a refused scale is not) and the job keeps its state. Said once per object generation. A spec.held: true
refused on a Placed or Running job is kept as wanted (server/job_holds.py WantedHolds): the job runs on, and is held
when it waits again (a re-queue), as the object says, until spec.held goes back to false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from federator.jobfile import held_of
from federator.model import JobHold, JobId
from federator.server.job_holds import Actor, HoldProblem, HoldRefused, hold_async, release_async

if TYPE_CHECKING:
    from federator.backends.kube.store import KubeJobStore
    from federator.server.federator import Federator


def namespace_hold(fed: Federator, namespace: str) -> JobHold:
    """The hold of a FederatedJob made with spec.held: true: its namespace's (the job's owner in Kubernetes mode)."""
    return JobHold(by=f"namespace {namespace}", at=fed.clock())


class SpecHolds:
    """The controller's side: a changed spec.held becomes a hold or a release; a refused one is said once."""

    def __init__(self, fed: Federator, store: KubeJobStore, warn: Callable[[dict[str, Any], str], None]) -> None:
        self.fed = fed
        self.store = store
        self.warn = warn  # a Warning Event HoldRefused on the object of this metadata
        self._refused: dict[str, int] = {}  # uid -> the generation whose spec.held was refused (said once)

    async def read(self, obj: Mapping[str, Any], job_id: JobId) -> None:
        """The FederatedJob of a known job was seen: hold or release its job if its spec.held changed, the write
        awaited off the event loop (in Kubernetes mode an API round trip, which held every stream on the loop). The
        job's write (StoreUnavailable) is raised to the controller, which tries the object again."""
        meta = obj.get("metadata") or {}
        job = self.fed.jobs.get(job_id)
        seen = held_of(obj)
        if not seen or job is None or job.phase.is_terminal:
            self.fed.wanted_holds.drop(job_id)  # set back to false, or nothing left to hold: none kept
        if job is None or self.store.spec_held.setdefault(job_id, job.hold is not None) == seen:
            return
        uid, generation = str(meta.get("uid", "")), int(meta.get("generation", 1))
        owner = self.store.owner_of(job_id)
        if owner is not None and generation < owner.generation:
            return  # an event from before the store's own write of spec.held (a gRPC hold): stale, not a change
        if self._refused.get(uid) == generation:
            return
        actor = Actor(user=f"namespace {job.spec.namespace}")
        self.store.spec_held[job_id] = seen  # the object holds it: not written back
        try:
            await (hold_async(self.fed, job, actor) if seen else release_async(self.fed, job, actor))
        except HoldRefused as exc:
            self.store.spec_held[job_id] = not seen  # as the job is: never written over the user's edit
            self._refused[uid] = generation
            if seen and exc.problem is HoldProblem.NOT_PENDING and not job.phase.is_terminal:
                # the object still says held: the job is held when it waits again (a re-queue, requeuehold)
                self.fed.wanted_holds.want(job_id, namespace_hold(self.fed, job.spec.namespace))
            self.warn(dict(meta), f"spec.held: {'not held' if seen else 'not released'}: {exc}")
        except BaseException:
            self.store.spec_held[job_id] = not seen
            raise

    def forget(self, uid: str) -> None:
        self._refused.pop(uid, None)


__all__ = ["SpecHolds", "namespace_hold"]
