"""Why a Submit is refused before anything is stored: the errors the edges map to status codes.

A module of its own (they were half of server/intake.py): `SubmitError` and its kinds, and the back-pressure
`QueueFull` family, each carrying the figures its message and its ErrorInfo quote (the cap, what holds it, where
the cap is set, when to retry).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from federator.model import Job
from federator.security.authz import Submitter

if TYPE_CHECKING:
    pass

log = logging.getLogger("federator.server")

class SubmitError(ValueError):
    """A submission refused; the message names the field.

    A refusal `about` another job (its name or request id is taken) names that job only to a caller who may
    see it (`told`): tenants share namespaces, and one must not learn another's job ids, names and phases by
    guessing them. (Request ids are each owner's own, so only an owner's own job holds one; the rule stays
    for names.)"""

    def __init__(self, message: str, *, about: Job | None = None, vague: str = "") -> None:
        super().__init__(message)
        self.about = about
        self.vague = vague or message

    def told(self, may_see: Callable[[Job], bool]) -> str:
        """The message for a caller; `may_see` says whether it may see a job."""
        return str(self) if self.about is None or may_see(self.about) else self.vague


class AlreadyExists(SubmitError):
    """A job of that namespace and name is already active."""


class RequestIdConflict(SubmitError):
    """A request id the federator has seen, sent again with a different spec."""


class QueueFull(SubmitError):
    """Back-pressure: the federator holds as many pending jobs as it may; try again after `retry_after`."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueuePendingLimit(QueueFull):
    """Back-pressure on one queue: it holds as many pending jobs as it may; other queues' Submits pass.

    A QueueFull, so every edge treats it as one: RESOURCE_EXHAUSTED with a retry-after over gRPC, and a
    FederatedJob that waits and is tried again in Kubernetes mode (backends/kube/controller.py)."""

    def __init__(self, *, queue: str, pending: int, limit: int, source: str, retry_after: float) -> None:
        super().__init__(f"queue {queue!r} is full: {pending} of its jobs are pending, its limit is {limit} "
                         f"({source}); retry after {retry_after:g}s. The cap is this queue's own: other queues "
                         "are held to theirs", retry_after)
        self.queue = queue
        self.pending = pending
        self.limit = limit


class UserPendingLimit(QueueFull):
    """Back-pressure on one owner: the user (or, for a FederatedJob made with kubectl, the namespace) holds as many
    pending jobs as it may over every queue; other users' Submits pass.

    Checked after the queue's cap, which a user allowed to submit to many queues (any queue the policy does not
    list is open unless defaultQueue.access says otherwise) could otherwise multiply. A QueueFull, so every edge
    treats it as one: RESOURCE_EXHAUSTED with a retry-after, and a FederatedJob that waits."""

    def __init__(self, *, owner: Submitter, pending: int, limit: int, source: str, retry_after: float) -> None:
        others = "users" if owner.user else "namespaces and users"
        super().__init__(f"{owner} is at its cap of pending jobs: {pending} of its jobs are pending over all queues, "
                         f"its limit is {limit} ({source}); retry after {retry_after:g}s. The cap is its own: other "
                         f"{others} are held to theirs", retry_after)
        self.owner = owner
        self.pending = pending
        self.limit = limit


class ByteBudgetFull(QueueFull):
    """Back-pressure on bytes: the unfinished jobs' specs of the job's owner (`owner`), or of the whole federator
    (`owner` None), weigh so much that this one would pass the budget. Room comes back as jobs finish. A
    QueueFull, so every edge treats it as one: RESOURCE_EXHAUSTED with a retry-after, a FederatedJob that
    waits (Event QueueFull)."""

    def __init__(self, *, owner: Submitter | None, held: int, size: int, limit: int, source: str,
                 retry_after: float) -> None:
        if owner is None:
            said = (f"the federator is at its byte budget: its unfinished jobs' specs take {held} bytes and this "
                    f"one {size}, over its limit of {limit} ({source}); retry after {retry_after:g}s")
        else:
            others = "users" if owner.user else "namespaces and users"
            said = (f"{owner} is at its byte budget: its unfinished (pending, placed, running) jobs' specs take "
                    f"{held} bytes and this one {size}, over its limit of {limit} ({source}); retry after "
                    f"{retry_after:g}s, or once some of its jobs finish. The budget is its own: other {others} are "
                    "held to theirs")
        super().__init__(said, retry_after)
        self.owner = owner
        self.held = held
        self.size = size
        self.limit = limit


class DelegateBudgetFull(QueueFull):
    """Back-pressure on a delegate (tenancy.delegates): the jobs it submitted on anyone's behalf hold its budget of
    pending jobs (`size` 0) or unfinished spec bytes. Checked after the per-user caps, which a delegate that may
    name users at will gets afresh for every name (portal re-test N2). A QueueFull, so every edge treats it as
    one: RESOURCE_EXHAUSTED with a retry-after."""

    def __init__(self, *, delegate: str, held: int, size: int, limit: int, source: str, retry_after: float) -> None:
        what = (f"its unfinished jobs' specs take {held} bytes and this one {size}, over its budget of {limit} bytes"
                if size else f"{held} of the jobs it submitted are pending, its budget is {limit}")
        super().__init__(f"delegate {delegate!r} is at its budget: over every user it acts for, {what} ({source}); "
                         f"retry after {retry_after:g}s, or once some of them are placed or finish. The budget is "
                         "the delegate's own: the users' own calls and other delegates are held to theirs",
                         retry_after)
        self.delegate = delegate
        self.held = held
        self.size = size
        self.limit = limit


__all__ = ["AlreadyExists", "ByteBudgetFull", "DelegateBudgetFull", "QueueFull", "QueuePendingLimit",
           "RequestIdConflict", "SubmitError", "UserPendingLimit"]
