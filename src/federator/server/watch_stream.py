"""JobService.Watch: a snapshot, then changes read from the numbered history; bookmarks and resume on request.

A client that asks (WatchJobsRequest.send_bookmarks, since_revision) gets what a list+watch client needs
(jobs.proto, "Revisions, bookmarks and resume"): each Job with the revision it was sent at, a bookmark when the
snapshot is complete, removals, and a resume after a cut that sends only what it missed, or OUT_OF_RANGE when
the history no longer reaches back that far. A client that asks for none of it sees the stream as it was before
these fields: no revision, no bookmark, no removal (outside QA, portal M2).

The stream is a cursor into `Federator.history` (server/watch_history.py). It sends a job's state as it is when
its change is read, so changes that come faster than a client reads arrive as one message: a change of a job
whose newer change is already recorded is skipped (`WatchHistory.newest`), and so is a change the snapshot
already carried (recorded while the snapshot was sent, before that job's turn).

Why no copy per watcher of every job it was sent: each stream kept every job's last sent bytes to compare, O(jobs)
per watcher for the life of the stream (about 1.9 MiB per watcher with 10,000 small jobs, more with pod
templates: bench/watch_memory.py), and the history's revisions say nearly all of it. What they cannot say is a
change made before its announcement (a write on its way to the store: a new job the snapshot sent before its
Submit's write returned, a cycle's placements) whose job was sent meanwhile. For that, a stream keeps a digest of
its last RECENT_SENDS sends (`RecentSends`): a write's way is short, so the state it would send again was sent
lately. One sent longer ago comes twice, and jobs.proto says so (Watch: "A job may also come again in a state this
stream already sent it"; a snapshot of more than RECENT_SENDS jobs during a cycle that places some of them meets
it): keeping every send until its announcement would be the O(jobs) copy again, to spare a repeat that a client
applying each Job as a replacement takes in its stride.

WatchBatches is the same stream several messages at a time (`batches`). Why: gRPC sends one message per write,
and each write waits a turn of the event loop; on a loaded federator a turn is long, and a 30,000-job snapshot one
Job a message took 10 minutes (soak finding S7). `watch` yields FLUSH wherever the stream would stop to wait (the
end of a pass over the history, before an error ends it), so a batch gathers what Watch would have sent at once
and is sent as soon as nothing more comes: the order, revisions and errors are Watch's.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from federator.api.v1 import jobs_pb2, types_pb2
from federator.jobfile import FieldProblem, shown
from federator.model import Job, JobId
from federator.security.authz import Allowed, Principal
from federator.server.errors import Exhausted, bad_request, exhausted
from federator.server.retention import removed_message

if TYPE_CHECKING:
    from federator.server.services import JobService

WATCH_RECHECK_SECONDS = 2.0  # a quiet Watch checks its caller again this often (a revoked one is ended)
BOOKMARK_SECONDS = 2.0  # at most this often, a bookmark tells a client the changes it does not see moved on
RECENT_SENDS = 1_024  # a stream's digests of its latest sends (about 100 KiB), whatever the number of jobs
BATCH_JOBS = 256  # WatchBatches: the most Jobs in one message (and about --max-message-bytes of them)
FLUSH = None
"""What `watch` yields where it stops gathering: a batch is sent now (WatchBatches); Watch skips it."""


class RecentSends:
    """Digests of the states a stream sent lately, the last `size` jobs: a change announced after the state it
    made was sent (its write was on its way) finds that state here and is not sent again (see the module)."""

    def __init__(self, size: int = RECENT_SENDS) -> None:
        self.size = size
        self._sent: dict[str, bytes] = {}  # oldest first (a dict keeps its order, in half an OrderedDict's room)

    def again(self, job_id: str, data: bytes) -> bool:
        """Whether `data` is the state last sent for `job_id`; if not, it is the one sent now."""
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if self._sent.get(job_id) == digest:
            return True
        self._sent.pop(job_id, None)
        self._sent[job_id] = digest  # the newest
        if len(self._sent) > self.size:
            del self._sent[next(iter(self._sent))]
        return False

    def forget(self, job_id: str) -> None:
        self._sent.pop(job_id, None)


def _bookmark(revision: int) -> types_pb2.Job:
    return types_pb2.Job(bookmark=True, revision=revision)


async def jobs(edge: JobService, request: jobs_pb2.WatchJobsRequest,
               context: grpc.aio.ServicerContext) -> AsyncIterator[types_pb2.Job]:
    """The stream of one Watch call (JobService.Watch)."""
    async for pb in watch(edge, request, context):
        if pb is not FLUSH:
            yield pb


async def batches(edge: JobService, request: jobs_pb2.WatchJobsRequest,
                  context: grpc.aio.ServicerContext) -> AsyncIterator[jobs_pb2.JobBatch]:
    """The stream of one WatchBatches call: Watch's messages, up to BATCH_JOBS and about --max-message-bytes a
    message, each batch sent at a FLUSH (see the module)."""
    limit = edge.fed.limits.max_message_bytes
    batch, size = jobs_pb2.JobBatch(), 0
    async for pb in watch(edge, request, context):
        if pb is not FLUSH:
            n = pb.ByteSize()
            if batch.jobs and (len(batch.jobs) >= BATCH_JOBS or size + n > limit):
                yield batch
                batch, size = jobs_pb2.JobBatch(), 0
            batch.jobs.append(pb)
            size += n
        elif batch.jobs:
            yield batch
            batch, size = jobs_pb2.JobBatch(), 0
    if batch.jobs:
        yield batch


async def watch(edge: JobService, request: jobs_pb2.WatchJobsRequest,
                context: grpc.aio.ServicerContext) -> AsyncIterator[types_pb2.Job | None]:
    """Watch's messages, and FLUSH where the stream stops gathering (see the module)."""
    fed, history = edge.fed, edge.fed.history
    who = await edge.principal(context)
    if request.since_revision < 0:
        problem = FieldProblem("since_revision", f"must not be negative, got {request.since_revision}")
        await context.abort_with_status(bad_request(str(problem), [problem]))
    numbered = request.send_bookmarks or request.since_revision > 0  # revisions and removals: a new client
    wanted: JobId | None = None
    if request.job_id:
        job, denied = await edge._find(who, request.job_id, context)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no job with id or name {shown(request.job_id)}")
            return
        if denied is not None:
            await edge.refuse(context, denied.rule.value, denied.message, job_id=job.job_id)
        wanted = job.job_id
    if request.since_revision > 0 and not history.held(request.since_revision):
        await context.abort(grpc.StatusCode.OUT_OF_RANGE, history.too_old(request.since_revision))
    if 0 < request.since_revision < history.policy_at:
        await context.abort(grpc.StatusCode.OUT_OF_RANGE, history.policy_gone(history.policy_at))
    refusal = edge.watch_seats.take(who.user)  # per user and in all (watch_seats.py)
    if refusal is not None:
        await context.abort_with_status(refusal)
    user = who.user
    loop = asyncio.get_running_loop()
    encodings = edge.watch_encodings
    # A job the snapshot sent after a change of it was recorded (past `began`): the newest such revision, which
    # the snapshot's state already carries; dropped once read, so it holds only what changed during the snapshot.
    carried: dict[JobId, int] = {}
    recent = RecentSends()
    caught_up = not request.since_revision  # a resume's bookmark waits until it has read up to `began`
    try:
        # A whole view's snapshot waits its turn (watch_encodings.py: a bounded share of the loop)
        turn = await encodings.turn() if not request.since_revision and wanted is None else None
        try:
            checked_at = loop.time()
            began = history.revision  # the snapshot is as of now or later; the changes after this are read below
            cursor = request.since_revision or began
            last_sent, last_sent_at = cursor, loop.time()
            if not request.since_revision:
                one = fed.jobs.get(wanted) if wanted is not None else None
                snapshot = ([one] if one is not None else []) if wanted is not None else edge._visible(who)
                for job in snapshot:
                    newest = history.newest(job.job_id)
                    if newest > began:
                        carried[job.job_id] = newest
                    encoded, made = encodings.encoded(job)
                    recent.again(job.job_id, encoded.digest)
                    pb = made if made is not None else encoded.message()
                    if numbered:
                        pb.revision = began
                    yield pb
                    if turn is not None:
                        turn.sent()
                snapshot = []  # not held by the stream while it lives
                if request.send_bookmarks:
                    yield _bookmark(began)
                    last_sent_at = loop.time()
        finally:
            if turn is not None:
                turn.give_back()
        while True:
            yield FLUSH  # before an error ends it, or a wait
            if history.ended:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "watch: the federator is stopping; watch "
                                                                 "again (its standby, or it once restarted)")
            if not history.held(cursor):
                await context.abort_with_status(exhausted("watch: this client fell too far behind; watch again",
                                                          Exhausted.WATCH_FELL_BEHIND))
            changes = history.after(cursor)
            for change in changes:
                cursor = change.revision
                if change.policy:
                    if numbered:  # an old-style Watch re-checks the caller per job: nothing it holds is wrong
                        yield FLUSH
                        await context.abort(grpc.StatusCode.OUT_OF_RANGE, history.policy_gone(change.revision))
                    continue
                if wanted is not None and change.job_id != wanted:
                    continue
                if change.removal is not None:
                    if not numbered and wanted is not None:
                        yield FLUSH
                        await context.abort(grpc.StatusCode.NOT_FOUND, removed_message(request.job_id))
                    removal = change.removal
                    carried.pop(change.job_id, None)
                    recent.forget(change.job_id)
                    encodings.forget(change.job_id)
                    if numbered and (who.admin or edge.authz.sees_owner(who, removal.owner, removal.groups)):
                        yield types_pb2.Job(job_id=change.job_id, removed=True, revision=change.revision)
                        last_sent, last_sent_at = change.revision, loop.time()
                        if wanted is not None:
                            return  # nothing more can come of a removed job
                    continue
                if history.newest(change.job_id) > change.revision:
                    continue  # a newer change of this job is recorded: it sends the job's state then
                if carried.pop(change.job_id, 0) >= change.revision:
                    continue  # the snapshot sent this state
                job = fed.jobs.get(change.job_id)
                if job is None:
                    continue  # removed since: its removal comes later in the history
                if wanted is not None:
                    yield FLUSH  # a Watch of one job may end PERMISSION_DENIED in `_shown`
                shown_pb, who, checked_at = await _shown(edge, job, who, checked_at, recent, wanted, context)
                if shown_pb is None:
                    continue
                if numbered:
                    shown_pb.revision = change.revision
                yield shown_pb
                last_sent, last_sent_at = change.revision, loop.time()
            if request.send_bookmarks and cursor >= began and (
                    not caught_up or (cursor > last_sent and loop.time() - last_sent_at >= BOOKMARK_SECONDS)):
                caught_up = True
                yield _bookmark(cursor)
                last_sent, last_sent_at = cursor, loop.time()
            yield FLUSH  # what this pass read goes now, not after the wait
            if not changes:
                await history.wait(cursor, WATCH_RECHECK_SECONDS)
            if (not changes and history.revision == cursor) or loop.time() - checked_at >= WATCH_RECHECK_SECONDS:
                # The caller as of now: a revoked certificate ends the stream within the recheck's time, busy or
                # quiet. Not per change read: every watcher reads every job's change, most of them others', and a
                # certificate parsed per change per watcher was the stream's main cost.
                who, checked_at = await edge.principal(context), loop.time()
    finally:
        edge.watch_seats.give_back(user)


async def _shown(edge: JobService, job: Job, who: Principal, checked_at: float, recent: RecentSends,
                 wanted: JobId | None, context: grpc.aio.ServicerContext
                 ) -> tuple[types_pb2.Job | None, Principal, float]:
    """The message for a changed job, or None when it is not to be sent (not the caller's to see, or the state
    it was sent lately); the caller as last checked, and when. A Watch of that one job the caller may no longer
    see ends PERMISSION_DENIED."""
    allowed = edge.authz.job(who, job, manage=False)
    pb = None
    if isinstance(allowed, Allowed):
        encoded, made = edge.watch_encodings.encoded(job)  # one encoding per change for every stream
        if recent.again(job.job_id, encoded.digest):
            return None, who, checked_at
        pb = made if made is not None else encoded.message()
        # Before anything is sent, the caller as of now: a revoked certificate, or a policy that no longer lets
        # them see the job, ends what they may read on an open stream.
        who, checked_at = await edge.principal(context), asyncio.get_running_loop().time()
        allowed = edge.authz.job(who, job, manage=False)
    if wanted is not None and not isinstance(allowed, Allowed):
        await edge.refuse(context, allowed.rule.value, allowed.message, job_id=wanted)
    if pb is None or not isinstance(allowed, Allowed):
        recent.forget(job.job_id)  # not sent after all
        return None, who, checked_at
    return pb, who, checked_at


__all__ = ["BATCH_JOBS", "BOOKMARK_SECONDS", "FLUSH", "RECENT_SENDS", "WATCH_RECHECK_SECONDS", "RecentSends",
           "batches", "jobs", "watch"]
