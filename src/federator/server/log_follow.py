"""`federator logs --follow`: a job's output as it is written (jobs.proto FollowLogs), and the bounds on reading logs.

Why a module of its own: every ML user's first reflex is `kubectl logs -f`, and they looped `federator logs` by
hand instead, each call a read of every member the job ran on and an audit line, unbounded. Here the federator,
not the client, polls: every FOLLOW_POLL_SECONDS it asks each placement's agent (agent.proto LogsRequest with
`timestamps` and `since_time`, only to an agent listing "logs-since") for the lines written since the last one it
passed on, and streams only the new ones.

The cursor is per placement and replica: the time of the last line passed on, to the nanosecond, and how many
lines of that very time were passed (`Cursor`). Kubernetes' sinceTime is whole seconds, so a read asks from the
second of the oldest cursor of the placement and `cut` drops what was passed already: no line twice, none
skipped, unless more came between two reads than one read holds (then that replica's next JobLog is marked
truncated). A replica with no line yet has no cursor; the read then asks from a second before the others', so a
node clock up to a second behind loses nothing. A new pod of a replica dates its lines after the old one's; a new
placement (a failover) is read from its start.

At scale (server/log_polls.py): a follow's first read (its tail) is its own; after it, followers of the same
output (job, replica, container) share one read a beat, asked from the oldest of their cursors, and each cuts it
at its own (`Follow.message`), so one line reaches each once. A cluster's follow reads are paced by a budget
(log_polls.FOLLOW_READS_PER_CLUSTER in flight). An agent answering "busy" skips that beat for the placement: the
cursor stays, the next beat asks from the last line seen, and the user is told only after FOLLOW_BUSY_TOLD_AFTER
busy beats in a row. The read after the job's end is no exception: a busy answer then does not end the follow
without its last lines (there is no next beat to bring them), it is read again, until told.

Bounds: at most --max-log-follows-per-user follows per user and --max-log-follows in all (`FollowSeats`), each
ending after FOLLOW_BOUND_SECONDS; the unary Logs is held to a per-user rate (`LogsRate`: a burst of LOGS_BURST,
then one every LOGS_EVERY_SECONDS, the follow's own pace). Both refusals are RESOURCE_EXHAUSTED with a RetryInfo.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import grpc

from federator.api.v1 import jobs_pb2
from federator.jobfile import FieldProblem, shown
from federator.logtail import MAX_LIMIT_BYTES, MAX_TAIL_LINES
from federator.model import Placement
from federator.security.authz import Allowed, Denied
from federator.server import logs
from federator.server.errors import Exhausted, bad_request, exhausted
from federator.server.watch_seats import SeatCounts
from federator.timestamps import duration, utc_seconds

if TYPE_CHECKING:
    from federator.server.job_service import JobService

FOLLOW_POLL_SECONDS = 2.0
"""How often a followed output is read for new lines: one read a beat, however many follow it (log_polls.py)."""
FOLLOW_BOUND_SECONDS = 24 * 3600.0
"""A follow ends after this, saying so: the client follows again to go on."""
DEFAULT_FOLLOW_TAIL = 10
"""Lines of each replica a follow sends first (FollowLogsRequest.tail_lines 0), as `kubectl logs -f --tail=10`."""
LOGS_BURST = 10
LOGS_EVERY_SECONDS = 2.0
"""One user's Logs calls: LOGS_BURST at once, then one every LOGS_EVERY_SECONDS (a follow's pace)."""
FOLLOW_BUSY_TOLD_AFTER = 5
"""Busy answers of one placement in a row a follow skips before it tells the user (JobLogsError) that its cluster
is busy; it follows on either way."""
FOLLOWS_FULL_RETRY_SECONDS = 10.0
"""A follow refused for a cap is retried after this: a seat frees only when a follow ends."""
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ")


class LogsRate:
    """Per-user token buckets for the unary Logs: `take` answers None, or the refusal naming when to come back."""

    def __init__(self, *, burst: int = LOGS_BURST, every: float = LOGS_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.every, self.clock = burst, every, clock
        self._users: dict[str, tuple[float, float]] = {}  # user -> (tokens, when counted)

    def take(self, user: str) -> grpc.Status | None:
        now = self.clock()
        tokens, at = self._users.get(user, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) / self.every)
        if tokens < 1.0:
            self._users[user] = (tokens, now)
            wait = (1.0 - tokens) * self.every
            return exhausted(f"logs: user {shown(user)} asked for logs more often than one user may ({self.burst} "
                             f"at once, then one every {self.every:g}s: each call reads every member the job ran "
                             f"on); retry after {wait:.1f}s, or follow the output: federator logs --follow",
                             Exhausted.LOGS_RATE, retry_after=round(wait, 1) or 0.1)
        self._users[user] = (tokens - 1.0, now)
        if len(self._users) > 10_000:  # forget users whose bucket is full again: they are as new
            self._users = {u: (t, a) for u, (t, a) in self._users.items()
                           if t + (now - a) / self.every < self.burst}
        return None


class FollowSeats(SeatCounts):
    """Open follows, per user (--max-log-follows-per-user) and in all (--max-log-follows); 0 is no cap."""

    def take(self, user: str) -> grpc.Status | None:
        held = self.held(user)
        if self.per_user and held >= self.per_user:
            why, limit = (f"user {shown(user)} follows {held} jobs' logs, the most one user may "
                          f"({self.per_user}, --max-log-follows-per-user); end one first"), "user"
        elif self.in_all and self.total >= self.in_all:
            why, limit = (f"the federator holds {self.total} log follows open, its limit is {self.in_all} "
                          "(--max-log-follows)"), "federator"
        else:
            self.seat(user)
            return None
        return exhausted(f"logs --follow: {why}; retry after {FOLLOWS_FULL_RETRY_SECONDS:g}s",
                         Exhausted.LOG_FOLLOWS_FULL, retry_after=FOLLOWS_FULL_RETRY_SECONDS, metadata={"limit": limit})


def stamped(line: str) -> tuple[int, str] | None:
    """A dated line (agent.proto LogsRequest.timestamps) as (nanoseconds since the epoch, the line without its
    date), or None when it has none that parses."""
    m = _STAMP.match(line)
    if m is None:
        return None
    try:
        whole = datetime.fromisoformat(m.group(1) + m.group(3))
    except ValueError:
        return None
    return int(whole.timestamp()) * 1_000_000_000 + int((m.group(2) or "0").ljust(9, "0")), line[m.end():]


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last line passed on of one replica: its time (ns) and how many lines of that time were passed."""

    ns: int
    same: int


def cut(text: str, cursor: Cursor | None, *, truncated: bool) -> tuple[list[str], Cursor | None, bool]:
    """The lines of a dated `text` after `cursor`, undated; the cursor after them; and whether lines may have been
    lost before them (the agent cut its answer and the cursor's own line is not in it)."""
    dated = [d for d in (stamped(line) for line in text.split("\n")) if d is not None]
    new: list[str] = []
    at_cursor = 0
    for ns, rest in dated:
        if cursor is not None and ns < cursor.ns:
            continue
        if cursor is not None and ns == cursor.ns:
            at_cursor += 1
            if at_cursor <= cursor.same:
                continue
        new.append(rest)
    if not dated:
        return [], cursor, False
    last = dated[-1][0]
    moved = Cursor(last, sum(1 for ns, _ in dated if ns == last))
    if cursor is not None and moved.ns == cursor.ns:
        moved = Cursor(last, max(moved.same, cursor.same))
    lost = cursor is not None and truncated and dated[0][0] > cursor.ns
    return new, moved if cursor is None or moved.ns >= cursor.ns else cursor, lost


class Follow:
    """One follow's state across its reads: the cursors, the placements read once, what was said of each."""

    def __init__(self, tail_lines: int, first: Sequence[Placement]) -> None:
        self.tail_lines = tail_lines
        self.initial = {p.placement_id for p in first}  # read first with the user's tail; later ones whole
        self.cursors: dict[tuple[str, int], Cursor] = {}
        self.replicas: dict[str, set[int]] = {}  # per placement, the replicas read
        self.said: dict[tuple[str, int], str] = {}  # the last error told per placement (-1) and replica
        self.busy: dict[str, int] = {}  # per placement, the busy answers in a row (beats skipped)
        self.skipped: set[str] = set()  # the placements whose beat the last read skipped (busy, not told)

    def ask(self, placement: Placement) -> tuple[int, str]:
        """(tail_lines, since_time) of the next read of `placement` (see the module)."""
        pid = placement.placement_id
        read = self.replicas.get(pid)
        if read is None:
            return (self.tail_lines if pid in self.initial else MAX_TAIL_LINES), ""
        cursors = [self.cursors[(pid, r)].ns for r in read if (pid, r) in self.cursors]
        if not cursors:
            return MAX_TAIL_LINES, ""
        since = min(cursors) // 1_000_000_000 - (1 if len(cursors) < len(read) else 0)
        return MAX_TAIL_LINES, utc_seconds(since)

    def message(self, got: logs.Gathered) -> jobs_pb2.FollowLogsMessage:
        """What a read brought that the user has not been told: new lines, and errors that are new or changed."""
        out = jobs_pb2.FollowLogsMessage()
        self.skipped = set()
        first = {t.placement_id for t in got.logs if t.placement_id in self.initial} - self.replicas.keys()
        for t in got.logs:
            key = (t.placement_id, t.replica)
            self.busy.pop(t.placement_id, None)
            self.replicas.setdefault(t.placement_id, set()).add(t.replica)
            if t.error:
                if self.said.get(key) != t.error:
                    self.said[key] = t.error
                    out.logs.append(jobs_pb2.JobLog(cluster=t.cluster, placement_id=t.placement_id,
                                                    replica=t.replica, pod=t.pod, container=t.container,
                                                    error=t.error))
                continue
            self.said.pop(key, None)
            lines, cursor, lost = cut(t.text, self.cursors.get(key), truncated=t.truncated)
            if t.placement_id in first:  # its tail only, even when a shared read brought more
                lines = lines[len(lines) - self.tail_lines:] if len(lines) > self.tail_lines else lines
            if cursor is not None:
                self.cursors[key] = cursor
            if lines or lost:
                out.logs.append(jobs_pb2.JobLog(cluster=t.cluster, placement_id=t.placement_id, replica=t.replica,
                                                pod=t.pod, container=t.container,
                                                text="".join(f"{line}\n" for line in lines), truncated=lost))
        for u in got.unread:
            key = (u.placement_id, -1)
            if u.busy:
                self.busy[u.placement_id] = self.busy.get(u.placement_id, 0) + 1
                if self.busy[u.placement_id] < FOLLOW_BUSY_TOLD_AFTER:
                    self.skipped.add(u.placement_id)
                    continue  # a beat skipped: its cursor stays, the next read asks from the last line seen
            else:
                self.busy.pop(u.placement_id, None)
            if self.said.get(key) != u.message:
                self.said[key] = u.message
                out.errors.append(jobs_pb2.JobLogsError(cluster=u.cluster, placement_id=u.placement_id,
                                                        message=u.message))
        for t in got.logs:
            self.said.pop((t.placement_id, -1), None)  # read again: a later error is news
        return out


async def follow(service: JobService, request: jobs_pb2.FollowLogsRequest,
                 context: grpc.aio.ServicerContext) -> AsyncIterator[jobs_pb2.FollowLogsMessage]:
    """JobService.FollowLogs (see the module): checked, seated and audited once, then a read every
    FOLLOW_POLL_SECONDS until the job ends (read once more after), the bound, or the federator stops; the last
    message says which in `end` (FollowEnd), so a client tells the job's end from the follow's."""
    fed = service.fed
    who = await service.principal(context)
    try:
        if not 0 <= request.tail_lines <= MAX_TAIL_LINES:
            raise logs.BoundsError("tail_lines", f"must be from 1 to {MAX_TAIL_LINES} (0: {DEFAULT_FOLLOW_TAIL}), "
                                                 f"got {request.tail_lines}")
        want = logs.bounds(replica=request.replica if request.HasField("replica") else None,
                           container=request.container, tail_lines=request.tail_lines or DEFAULT_FOLLOW_TAIL,
                           limit_bytes=MAX_LIMIT_BYTES, max_message_bytes=fed.limits.max_message_bytes)
    except logs.BoundsError as exc:
        problem = FieldProblem(exc.field, str(exc).removeprefix(f"{exc.field}: "))
        await context.abort_with_status(bad_request(str(exc), [problem]))
        raise AssertionError("unreachable") from exc
    job, obj = await service.logs_job(who, request.job_id, context, follow=True)
    user = who.user
    refusal = service.log_follows.take(user)
    if refusal is not None:
        service.audit.record("logs", identity=who, obj=obj,
                             result="refused", code=grpc.StatusCode.RESOURCE_EXHAUSTED.name,
                             message=str(refusal.details))
        await context.abort_with_status(refusal)
        raise AssertionError("unreachable")
    poll = service.log_polls.join(job.job_id, want)
    try:
        decision = service.authz.job(who, job, manage=False)
        service.audit.record("logs", identity=who, obj=obj, result="accepted",
                             rule=decision.rule.value if isinstance(decision, Allowed) else "")
        state = Follow(want.tail_lines, job.placements)
        read = 0
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            now = fed.jobs.get(job.job_id)
            if now is None:
                yield jobs_pb2.FollowLogsMessage(ended=f"job {job.job_id} was removed",
                                                 end=jobs_pb2.FOLLOW_END_JOB_REMOVED)
                return
            job = now
            if fed.history.ended:
                yield jobs_pb2.FollowLogsMessage(ended="the federator is stopping; follow again (its standby, or "
                                                       "it once restarted)",
                                                 end=jobs_pb2.FOLLOW_END_FEDERATOR_STOPPING)
                return
            who = await service.principal(context)  # as of now: a revoked credential ends the follow
            if isinstance(service.authz.job(who, job, manage=False), Denied):
                await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                    f"logs --follow: you may no longer read job {job.job_id}'s logs")
            final = job.phase.is_terminal  # its last lines, read once more after its final phase
            # the first read, its own tail, alone; then the beats shared with the output's other followers
            got = await (poll.beat(state.ask) if read else service.log_polls.read(job, want, state.ask))
            if not read:
                poll.first_read()
            read += 1
            message = state.message(got)
            if final and not state.skipped:  # a final read answered busy is read again: its last lines come
                message.ended = f"job {job.job_id} {job.phase.value}"
                message.end = jobs_pb2.FOLLOW_END_JOB_ENDED
            elif loop.time() - began >= FOLLOW_BOUND_SECONDS:
                message.ended = (f"the follow's bound of {duration(FOLLOW_BOUND_SECONDS)} passed: follow again "
                                 "to go on")
                message.end = jobs_pb2.FOLLOW_END_BOUND
            if message.logs or message.errors or message.ended:
                yield message
            if message.ended:
                return
    finally:
        service.log_polls.leave(poll)
        service.log_follows.give_back(user)


__all__ = ["DEFAULT_FOLLOW_TAIL", "FOLLOW_BUSY_TOLD_AFTER", "FOLLOW_BOUND_SECONDS",
           "FOLLOW_POLL_SECONDS", "LOGS_BURST", "LOGS_EVERY_SECONDS",
           "Cursor", "Follow", "FollowSeats", "LogsRate", "cut", "follow", "stamped"]
