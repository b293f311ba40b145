"""The Queue controller of the host cluster: Queue objects feed the scheduler's queues.

`kubectl apply -f queue.yaml` changes a queue's weight or quotas without a
restart, and who may use it: `spec.namespaceSelector` (the namespaces whose
FederatedJobs may name it) and `spec.access` (users and groups of the gRPC
API), handed to the Authorizer (security/authz.py). Every change is an audit
line (`queue.change`). Every change (a Queue added, modified or deleted) rebuilds the
scheduler's config from the policy file's (`--policy`, the base) with every
valid Queue object on top, and hands it to the Federator; the next scheduling
cycle uses it. A Queue the validator refuses is reported: a log line, and the
condition `Valid=False` in its status naming the bad field. A change that makes
a valid Queue invalid (a quota's model misspelled: `H1000`) keeps its last
valid spec in force, as a reload of a bad file keeps the good one: dropping it
would take the tenant's quota away over a typo. A Queue never valid since this
federator started is ignored (its queue is the policy file's, or
`defaultQueue`). Nothing a Queue holds can stop the controller.

The status also shows what the queue holds: accelerators in use per cluster accelerator model,
pending and running jobs, rewritten when it changes.

A Queue carries the finalizer `federator.io/queue-in-use` (IN_USE), added once
the federator has seen it: deleted (a GitOps prune, an app moved or renamed)
while jobs of its queue are unfinished (pending or placed or running), it stays,
Terminating, with its quota and weight in force and a condition Terminating
saying what holds it, until they end; then the finalizer goes and so does the
Queue. Before, a prune lifted the quota at once and its waiting jobs were placed
over it (outside QA G5), as Kueue's ClusterQueue with `resource-in-use` avoids.
An API server that refuses the finalizer's write (a Role without `patch` on
queues) is said once per Queue; that Queue goes at once, as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from federator.backends.kube.api import QUEUES, ConflictError, KubeApi, KubeError, NotFoundError, Obj
from federator.backends.kube.informer import DELETED, Informer
from federator.backends.kube.queues import (
    IN_USE,
    QueueUsage,
    queue_from_object,
    queue_name,
    queue_status,
    queue_usage,
    terminating,
    with_queues,
)
from federator.scheduler import PolicyError, QueueConfig, SchedulerConfig
from federator.security.audit import AuditLog
from federator.security.authz import Access, Authorizer, LabelSelector, queue_tenancy
from federator.security.open_queues import open_queues, open_queues_warning
from federator.server.federator import Federator
from federator.server.outside_regions import say_outside
from federator.woken import woken

log = logging.getLogger("federator.kube.queues")


class QueueController:
    def __init__(self, fed: Federator, api: KubeApi, *, status_interval: float = 2.0,
                 clock: Callable[[], float] = time.time, authz: Authorizer | None = None,
                 audit: AuditLog | None = None) -> None:
        self.fed = fed
        self.authz = authz or Authorizer()
        self.audit = audit or AuditLog(None)
        self.api = api
        self.clock = clock
        self.status_interval = status_interval
        self.base = fed.scheduler.config  # the policy file's (or the defaults): what a deleted Queue falls back to
        self.informer = Informer(api, QUEUES, on_event=self._on_event, name="queues")
        self.queues: dict[str, QueueConfig] = {}  # the valid Queue objects, as the scheduler uses them
        # By (name, uid): each Queue's last valid spec as used (queue, access, namespaces) and its generation, kept
        # in force while a later change of that object is invalid
        self._valid: dict[tuple[str, str], tuple[QueueConfig, Access | None, LabelSelector | None, int]] = {}
        self.problems: dict[str, str] = {}  # Queue name -> why it is ignored
        self._written: dict[str, tuple[Obj, float]] = {}  # by uid: what was last written, and when
        self._dirty = asyncio.Event()
        self._told: set[tuple[str, str]] = set()  # (uid, what) said once: held while deleted, finalizer refused
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start watching; returns once the Queues are listed and the scheduler uses them."""
        self.informer.start()
        self._task = asyncio.get_running_loop().create_task(self._statuses())
        await self.informer.wait_synced()
        log.info("watching Queues in %s: %d found (%d invalid)", self.api.server, len(self.informer.cache),
                 len(self.problems))

    async def stop(self) -> None:
        self.informer.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- Queue objects -> the scheduler's config ------------------------------------

    def _on_event(self, kind: str, obj: Obj) -> None:
        self.apply(list(self.informer.cache.values()))
        meta = obj.get("metadata") or {}
        name = queue_name(obj)
        problem = self.problems.get(name) if kind != DELETED else None
        self.audit.record("queue.change", identity=None, result="refused" if problem else "accepted",
                          code="INVALID_ARGUMENT" if problem else "OK", message=problem or "",
                          obj={"kind": "Queue", "name": name, "event": kind,
                               "generation": int(meta.get("generation", 0) or 0),
                               "resourceVersion": str(meta.get("resourceVersion", ""))})

    def rebase(self, base: SchedulerConfig) -> None:
        """A reloaded policy file (server/policy_use.py): the new base, with every Queue object laid over it again
        (the caller has set the Authorizer's base tenancy)."""
        self.base = base
        self.apply(list(self.informer.cache.values()))

    def apply(self, objects: list[Obj]) -> None:
        """Rebuild the scheduler's queues from these Queue objects (all of them, as cached)."""
        queues: dict[str, QueueConfig] = {}
        problems: dict[str, str] = {}
        access: dict[str, Access] = {}
        namespaces: dict[str, LabelSelector] = {}
        valid: dict[tuple[str, str], tuple[QueueConfig, Access | None, LabelSelector | None, int]] = {}
        for obj in objects:
            name = queue_name(obj)
            meta = obj.get("metadata") or {}
            key = (name, str(meta.get("uid", "")))
            bad: list[str] = []
            who, selector = queue_tenancy(obj.get("spec") or {}, "spec", bad)
            try:
                queue = queue_from_object(obj)
                if bad:
                    raise PolicyError(bad, f"Queue {name}")
                valid[key] = (queue, who, selector, int(meta.get("generation", 0) or 0))
            except PolicyError as exc:
                kept = self._valid.get(key)
                if kept is None:
                    problems[name] = f"{exc}; ignored: the queue is the policy file's (or defaultQueue's)"
                else:
                    problems[name] = f"{exc}; the scheduler keeps this Queue's last valid spec (generation {kept[3]})"
                    valid[key] = kept
                if self.problems.get(name) != problems[name]:
                    log.warning("%s", problems[name])
                if kept is None:
                    continue
                queue, who, selector, _ = kept
            queues[name] = queue
            if who is not None:
                access[name] = who
            if selector is not None:
                namespaces[name] = selector
        seen_by = self.authz.policy
        self.authz.set_queues(access, namespaces, queues)  # a valid Queue object declares its queue
        if (now_open := open_queues(self.authz.policy)) != open_queues(seen_by):  # said when it changes (M2)
            if warning := open_queues_warning(now_open):
                log.warning("%s (with the Queue objects)", warning)
        if self.authz.policy != seen_by:  # who may see which job changed: numbered Watches list again
            self.fed.history.policy_changed()
        config = with_queues(self.base, queues, multi_tenant=bool(access))
        if config != self.fed.scheduler.config:
            changed = sorted(n for n in set(queues) | set(self.queues) if queues.get(n) != self.queues.get(n))
            log.info("queues from Queue objects changed: %s", ", ".join(changed) or "(policy file)")
            self.fed.set_scheduler_config(config)
            say_outside(self.fed.jobs.values(), config)  # a narrowed allowedRegions (server/outside_regions.py)
        self.queues, self.problems, self._valid = queues, problems, valid
        self._dirty.set()

    # -- status -------------------------------------------------------------------

    async def _statuses(self) -> None:
        while True:
            await woken(self._dirty, self.status_interval)  # not wait_for: on 3.11 it can drop a cancel (woken.py)
            self._dirty.clear()
            try:
                await self.write_statuses()
            except Exception:  # a failed round is retried on the next
                log.exception("writing Queue status failed")

    async def write_statuses(self, *, refresh_after: float = 60.0) -> None:
        """Each Queue's status, when it changed (or every refresh_after, so a lost write heals)."""
        now = self.clock()
        usage = queue_usage(self.fed.jobs.values())
        objects = list(self.informer.cache.values())
        await self.hold(objects, usage)
        uids = {str((o.get("metadata") or {}).get("uid", "")) for o in objects}
        self._written = {uid: w for uid, w in self._written.items() if uid in uids}
        for obj in objects:
            meta = obj.get("metadata") or {}
            name, uid = str(meta.get("name", "")), str(meta.get("uid", ""))
            old_status: dict[str, Any] = obj.get("status") or {}
            status = queue_status(generation=int(meta.get("generation", 1)), problem=self.problems.get(name),
                                  usage=usage.get(name, QueueUsage()),
                                  old_conditions=old_status.get("conditions") or [], now=now)
            if meta.get("deletionTimestamp"):  # held by its unfinished jobs (hold)
                status["conditions"].append(terminating(usage.get(name, QueueUsage()), generation=int(
                    meta.get("generation", 1)), old_conditions=old_status.get("conditions") or [], now=now))
            comparable = {**status, "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                                   for c in status["conditions"]]}
            last = self._written.get(uid)
            if last is not None and last[0] == comparable and now - last[1] < refresh_after:
                continue
            # A merge patch keeps map keys it does not mention: an accelerator model no longer held is set to null.
            gone = {
                m: None for m in (old_status.get("acceleratorsInUse") or {}) if m not in status["acceleratorsInUse"]
            }
            body = {"metadata": {"uid": uid},
                    "status": {**status, "acceleratorsInUse": {**status["acceleratorsInUse"], **gone}}}
            try:
                await asyncio.to_thread(self.api.patch, QUEUES, name, body, subresource="status")
            except NotFoundError:
                continue
            except KubeError as exc:
                log.warning("Queue %s: status not written: %s", name, exc)
                continue
            self._written[uid] = (comparable, now)

    async def hold(self, objects: list[Obj], usage: dict[str, QueueUsage]) -> None:
        """The finalizer IN_USE on every Queue, and off a deleted one once no unfinished job names its queue."""
        for obj in objects:
            meta = obj.get("metadata") or {}
            name, uid = str(meta.get("name", "")), str(meta.get("uid", ""))
            finalizers = [str(f) for f in meta.get("finalizers") or []]
            used = usage.get(name, QueueUsage())
            if meta.get("deletionTimestamp"):
                if IN_USE not in finalizers:
                    continue
                if used.pending_jobs + used.running_jobs:
                    self._once(uid, "held", "Queue %s deleted: held until its %d pending and %d running jobs end; "
                               "its quota and weight stay in force until then", name, used.pending_jobs,
                               used.running_jobs)
                    continue
                wanted = [f for f in finalizers if f != IN_USE]
            elif IN_USE in finalizers:
                continue
            else:
                wanted = [*finalizers, IN_USE]
            body = {"metadata": {"finalizers": wanted, "resourceVersion": meta.get("resourceVersion")}}
            try:
                await asyncio.to_thread(self.api.patch, QUEUES, name, body)
            except (ConflictError, NotFoundError):
                continue  # changed or gone since it was read: the newer version is judged at the next round
            except KubeError as exc:
                self._once(uid, "refused", "Queue %s: finalizer %s not written (%s): deleting it lifts its quota at "
                           "once, its jobs unfinished; grant the federator patch on queues", name, IN_USE, exc)
                continue
            if IN_USE not in wanted:
                log.info("Queue %s deleted: no unfinished job of its queue holds it any more", name)

    def _once(self, uid: str, what: str, message: str, *args: object) -> None:
        if (uid, what) not in self._told:
            self._told.add((uid, what))
            log.warning(message, *args)


__all__ = ["QueueController"]
