"""New FederatedJobs that wait before they are submitted: for their Queue to admit them, or for room.

Why a module of its own: a wait is not a verdict on the job, and it is the controller's (controller.py) only
state of an object that is neither a job nor refused. Two waits:

- A new FederatedJob whose Queue does not select its namespace (`spec.namespaceSelector`, security/authz.py)
  waits Pending, pendingReason QueueNotAllowed, with a Warning Event and an audit line (once per generation and
  reason), and is judged again every few seconds (unadmitted.py): the namespace labelled, or the Queue created, a
  moment later admits it. So does one naming a queue nobody declared under a multi-tenant policy whose
  defaultQueue has no access list (rule undeclared-queue: only admins may use such a queue, and a kubectl user is
  none). Before, both were refused for good, and a GitOps tool that applied the job before its Queue never got it
  run (outside QA G1).
- Back-pressure (QueueFull): the object is submitted once the federator, its queue or its namespace has room;
  told once, tried again every `retry_after`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError, KubeApi, KubeError, NotFoundError, Obj, key_of
from federator.backends.kube.events import EventReason
from federator.backends.kube.informer import MODIFIED
from federator.backends.kube.namespace_gate import namespace_labels, selector_applies
from federator.backends.kube.unadmitted import QUEUE_WAIT_RETRY_SECONDS, queue_wait_status
from federator.security.audit import AuditLog
from federator.security.authz import Authorizer, Denied, Rule
from federator.server.intake import QueueFull

log = logging.getLogger("federator.kube.controller")


class QueueWaits:
    """The objects told they wait (said once), and each one's next judgement."""

    def __init__(self, api: KubeApi, authz: Authorizer, audit: AuditLog, *, clock: Callable[[], float],
                 warn: Callable[[Obj, EventReason, str], None], requeue: Callable[[str, str, Obj], None]) -> None:
        self.api = api
        self.authz = authz
        self.audit = audit
        self.clock = clock
        self.warn = warn  # a Warning Event on the object of this metadata
        self.requeue = requeue  # the object reconciled again (controller.py `_requeue`)
        self._queue_waits: dict[str, tuple[int, str]] = {}  # uid -> the generation and reason told it waits for
        self._queue_retries: dict[str, asyncio.TimerHandle] = {}  # uid -> its next judgement while it waits
        self._full: set[str] = set()  # uids told the federator's queue is full (QueueFull), not submitted yet

    async def denied(self, namespace: str, queue: str) -> Denied | None:
        """The Queue's namespaceSelector against the namespace's labels (read only when a selector applies), and
        a queue nobody declared under a multi-tenant policy (rule undeclared-queue: a kubectl user is no admin)."""
        closed = self.authz.closed(queue)
        if not closed and not selector_applies(self.authz, queue):
            return None
        try:
            labels = await namespace_labels(self.api, namespace)
        except KubeError as exc:  # fail closed: a selector we cannot check refuses
            log.warning("namespace %s: labels not read (%s); its jobs match only selectors that need no label",
                        namespace, exc)
            labels = {}
        if closed:
            return self.authz.undeclared(queue, namespace, labels)
        decision = self.authz.namespace(queue, namespace, labels)
        return decision if isinstance(decision, Denied) else None

    async def for_queue(self, obj: Obj, denied: Denied) -> None:
        """Not admitted by its Queue (yet): Pending with the reason, said once per generation and reason (status,
        Warning Event QueueNotAllowed, audit line), and judged again in QUEUE_WAIT_RETRY_SECONDS for as long as it
        exists. A spec the federator already refused is not here: only an object the parser took waits."""
        meta = obj["metadata"]
        uid, generation = meta["uid"], int(meta.get("generation", 1))
        if self._queue_waits.get(uid) != (generation, denied.message):
            status = obj.get("status") or {}
            body = {"metadata": {"uid": uid},
                    "status": queue_wait_status(denied.message, generation=generation, now=self.clock(),
                                                old_conditions=status.get("conditions"))}
            try:
                await asyncio.to_thread(self.api.patch, FEDERATED_JOBS, meta["name"], body, meta["namespace"],
                                        subresource="status")
            except (ConflictError, NotFoundError):
                return  # deleted, or replaced by an object of that name: its own events follow
            self._queue_waits[uid] = (generation, denied.message)
            log.warning("FederatedJob %s/%s waits for its queue: %s", meta["namespace"], meta["name"],
                        denied.message)
            self._audit(obj, denied.message, denied.rule)
            self.warn(meta, EventReason.QUEUE_NOT_ALLOWED, f"waits, judged again every "
                                                           f"{QUEUE_WAIT_RETRY_SECONDS:g}s: {denied.message}")
        old = self._queue_retries.pop(uid, None)
        if old is not None:
            old.cancel()  # one judgement pending per object, however many events it had
        self._queue_retries[uid] = asyncio.get_running_loop().call_later(
            QUEUE_WAIT_RETRY_SECONDS, self.requeue, MODIFIED, key_of(obj), obj)

    def queue_admitted(self, uid: str) -> None:
        """Its Queue admits the object of `uid` now: a later wait is said again."""
        self._queue_waits.pop(uid, None)

    def for_room(self, obj: Obj, exc: QueueFull) -> None:
        """Back-pressure is not a verdict on the job: the object waits, and is submitted once the federator (or
        its queue: QueuePendingLimit, the queue's maxPendingJobs; or its namespace, which stands for the user a
        kubectl-made object lacks: UserPendingLimit, --max-pending-jobs-per-user) has room. It is told once (a
        Warning Event QueueFull, a log line), then tried again every `retry_after` for as long as it exists."""
        meta = obj["metadata"]
        if meta["uid"] not in self._full:
            self._full.add(meta["uid"])
            log.warning("FederatedJob %s/%s waits: %s", meta["namespace"], meta["name"], exc)
            self.warn(meta, EventReason.QUEUE_FULL, f"not submitted yet, tried again until there is room: {exc}")
        asyncio.get_running_loop().call_later(exc.retry_after, self.requeue, MODIFIED, key_of(obj), obj)

    def submitted(self, uid: str) -> None:
        """The object of `uid` is a job now: a later QueueFull of another is said again."""
        self._full.discard(uid)

    def forget(self, uid: str) -> None:
        """The object of `uid` is being deleted: no wait of it is remembered, nor judged again."""
        self._queue_waits.pop(uid, None)
        if (retry := self._queue_retries.pop(uid, None)) is not None:
            retry.cancel()

    def _audit(self, obj: Obj, message: str, rule: Rule) -> None:
        """The audit line of a FederatedJob its Queue does not admit (a tenancy rule's decision)."""
        meta, spec = obj["metadata"], obj.get("spec") or {}
        self.audit.record("federatedjob.refuse", identity=None, result="refused", code="PERMISSION_DENIED",
                          rule=rule.value, message=message,
                          obj={"kind": "FederatedJob", "namespace": meta["namespace"], "name": meta["name"],
                               "queue": str(spec.get("queue", "default"))})


__all__ = ["QueueWaits"]
