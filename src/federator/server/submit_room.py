"""The bounds Submit holds a caller to, each with what is held against it now: what WhoAmI reports per queue.

Why: a portal's submit form learned a queue's maxPriority and every pending cap only from refusals (outside portal
QA, M5 and re-test N6), so it could not show "3 of 50 pending" nor grey out a button before the user pressed it.
Each bound here is read the way Submit reads it (server/intake.py checks the queue's, the owner's pending jobs and
the owner's bytes through these very functions), so the two cannot drift apart; each is an index read, never a scan
over jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from federator.security.authz import Submitter

if TYPE_CHECKING:
    from federator.server.federator import Federator


@dataclass(frozen=True, slots=True)
class Held:
    """One bound: the most, what is held against it now, and where the bound comes from (for people)."""

    limit: int
    used: int
    source: str


def queue_pending(fed: Federator, queue: str) -> Held:
    """The queue's cap of pending jobs (its own maxPendingJobs, else --max-pending-jobs-per-queue) and every
    pending job of the queue."""
    config = fed.scheduler.config
    own = config.queue(queue).max_pending_jobs
    if own is not None:
        source = f"queue {queue!r} maxPendingJobs" if queue in config.queues else \
            "the policy's defaultQueue.maxPendingJobs"
    elif fed.limits.max_pending_jobs_per_queue is not None:
        source = "--max-pending-jobs-per-queue"
    else:
        source = "--max-pending-jobs-per-queue, by default half of --max-pending-jobs"
    return Held(own if own is not None else fed.limits.pending_per_queue, fed.cycles.by_queue.count(queue), source)


def user_pending(fed: Federator, owner: Submitter) -> Held:
    """The owner's cap of pending jobs over every queue, and their pending jobs. An owner is a user, or the
    namespace of a kubectl-made FederatedJob (`Submitter`); Submit's refusal says which, WhoAmI only asks for users."""
    source = "--max-pending-jobs-per-user" if fed.limits.max_pending_jobs_per_user is not None else \
        "--max-pending-jobs-per-user, by default half of --max-pending-jobs"
    return Held(fed.limits.pending_per_user, fed.cycles.by_owner.count(owner), source)


def user_bytes(fed: Federator, owner: Submitter) -> Held:
    """The owner's budget of unfinished jobs' spec bytes, and what their unfinished jobs weigh."""
    return Held(fed.limits.max_unfinished_bytes_per_user, fed.intake.bytes.owner(owner),
                "--max-unfinished-bytes-per-user")


def delegate_pending(fed: Federator, delegate: str) -> Held:
    """The delegate's budget of pending jobs over every user it acts for, and the pending jobs it submitted."""
    budget = fed.intake.budget(delegate)
    return Held(budget.pending_jobs, fed.cycles.by_delegate.count(delegate), budget.pending_source)


def delegate_bytes(fed: Federator, delegate: str) -> Held:
    """The delegate's budget of unfinished spec bytes, and what the unfinished jobs it submitted weigh."""
    budget = fed.intake.budget(delegate)
    return Held(budget.unfinished_bytes, fed.intake.bytes.delegate(delegate), budget.bytes_source)


__all__ = ["Held", "delegate_bytes", "delegate_pending", "queue_pending", "user_bytes", "user_pending"]
