"""Parked jobs' pending reasons, kept true when a report changes what they wait on, at the cost of their shapes.

Why: a parked job (parking.py) is left out of cycles until room may exist for
it, and kept the reason its last cycle gave it. A report that changed the room
without making it enough (a node came free: one replica of a 2 x 8 gang fits,
not both; the member's own queue now holds some back) brought back no job, so
`a100-q` kept `InsufficientAccelerators: member-b has no node with 8 free A100`
for 40 s while an identical job submitted then read `GangDoesNotFit: member-b
fits 1 of 2 replicas` (outside QA, ML user). Bringing every such job back
would undo parking: 100,000 parked jobs of one model would be a cycle's work at
every report of that model's pools.

So parked jobs are grouped by all a cycle reads to give a waiting job its
reason: its queue and priority (quota and preemption notes), its request's
shape (what filters and scores read, `PlacementRequest.shape`), its
accelerator alternatives, its owner (the jobs of its queue that go before
its owner's, scheduler/owner_share.py), and the reason itself. A cycle gives every job of one shape the
reason the first of them found (`unplaceable`, scheduler/cycle.py), so one job
of a group, asked again, tells the group's new reason.

When a report of a cluster changes its pools, CPU, memory or workload kinds,
or the cluster goes Partitioned or Lost (one turning Ready brings every job
back anyway), the groups whose reason names it are marked (an index by the
words of the groups' reasons), and at the next plan so are the groups whose
reason counts clusters it does not name ("7 more clusters") or is not told
cluster by cluster. A plan brings back one job of each marked group (`ask`);
when its cycle parks it again, its reason becomes every parked job's of the
group (`answer`, then `tell`, in slices between which the loop serves
streams). Three bounds: a group is asked at most once per `MIN_ASK_SECONDS`;
a plan asks at most `ASKS_PER_PLAN` groups, in the order they were marked;
and the jobs told a new reason (each a lazy store write and a Watch event)
stay within `TOLD_PER_SECOND` after a burst of `TOLD_BURST`. A marked group
that waits for any of them is asked at a later plan (a routine cycle comes at
least every cycle interval), never forgotten: on a small backlog a reason is
at most that wait plus a cycle old; on one of 100,000 jobs whose every reason
changed, the last is told about 50 s after the report.

Cost: per report, the groups whose reason names the cluster; per plan after
any report changed room, the groups that name none (the groups are a
backlog's kinds of request x reasons, not its jobs: 2,883 for 38,000 parked
jobs of mixed shapes on 100 clusters); per cycle, one job per group asked (at
most `ASKS_PER_PLAN`); per job parked, a dict entry (about 0.3 us a cycle;
3 us when its request is new, so a first cycle over 100,000 jobs takes about
0.3 s more); per job told, about 6 us on the loop and its lazy write, within
the budget. docs/benchmarks.md measures it under churn.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Container, Mapping

from federator.model import ClusterCapacity, Job, JobId, JobPhase, Reason
from federator.scheduler import PlacementRequest
from federator.server.job_message import keep_interruption

MIN_ASK_SECONDS = 5.0
"""The least time between two askings of one group: a bound on the writes a group of 100,000 jobs costs when
every report of a busy member rewords its reason ("fits 1 of 2 replicas", then "has no node with 8 free", then
"fits 1 of 2" again; a capacity reason names no member's most free on one node, scheduler/node_size.py)."""
ASKS_PER_PLAN = 256
"""Jobs a plan brings back to ask for their groups: a cycle's extra work stays a constant, whatever the number of
groups (a fleet of 100 clusters and 40,000 jobs of mixed shapes had 2,883, and any report marked nearly all:
their reasons count clusters they do not name)."""
TOLD_PER_SECOND = 2_000.0
"""Parked jobs told a new reason per second, in the long run (each is a store write, lazy, and a Watch event)..."""
TOLD_BURST = 20_000.0
"""...and at once after a quiet while. A group is told whole, charged after the fact: a group of 100,000 whose
reason changed puts the budget 80,000 in debt, and no group is asked again for 40 s."""
UNNAMED = " more clusters: "
"""How `summarize` (scheduler/cycle.py) counts the clusters of a code past the three it names."""

INTERNED_KINDS = 65_536
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")
GroupKey = tuple[int, Reason]  # (the kind of request, as `told_alike` interned; the reason its jobs were told)


def told_alike(request: PlacementRequest) -> tuple[object, ...]:
    """What a cycle reads to give a parked job its reason: jobs of one such kind and one reason are told alike. The
    owner too: a waiting job's reason counts the jobs of its queue that go before its owner's (scheduler/
    owner_share.py), so one owner's new reason is never told to another's jobs."""
    spec = request.spec
    return (spec.queue, spec.priority, spec.preemptible, request.shape(), spec.accelerators,  # the rest: in shape
            spec.owner)


class ReasonRefresh:
    """The groups of parked jobs by kind of request (`told_alike`) and reason, which of them a report marked, and
    the one job asked for each."""

    def __init__(self, min_ask_seconds: float = MIN_ASK_SECONDS, told_per_second: float = TOLD_PER_SECOND,
                 burst: float = TOLD_BURST, asks_per_plan: int = ASKS_PER_PLAN) -> None:
        self.min_ask_seconds = min_ask_seconds
        self.asks_per_plan = asks_per_plan
        self.told_per_second = told_per_second
        self.burst = burst
        self._tokens = burst  # jobs that may be told a new reason now (module docstring)
        self._tokens_at: float | None = None
        self._telling: deque[tuple[GroupKey, Reason, list[JobId]]] = deque()  # (old group, its new reason, jobs)
        self._groups: dict[GroupKey, dict[JobId, None]] = {}
        # each grouped job's request (the cycle keeps it while the job waits) and group: a request seen before is
        # not hashed again (its shape is a deep tuple), so a cycle that parks 100,000 jobs again pays little
        self._of: dict[JobId, tuple[PlacementRequest, GroupKey]] = {}
        self._kinds: dict[tuple[object, ...], int] = {}
        self._next_kind = 0
        # per word of their reasons (a cluster's name among them), the groups: a report marks those naming it
        self._named: dict[str, set[GroupKey]] = {}
        self._unnamed: set[GroupKey] = set()  # groups whose reason may tell of a cluster it does not name
        self._heard = False  # a cluster changed since the last plan
        self._marked: dict[GroupKey, None] = {}  # in the order they were first marked: asked in that order
        # the job brought back for its group, until it is parked again, and when it was brought back
        self._asked: dict[JobId, tuple[GroupKey, float]] = {}
        self._asking: set[GroupKey] = set()
        self._last_ask: dict[GroupKey, float] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def parked(self, job_id: JobId, request: PlacementRequest, reason: Reason) -> None:
        """A cycle parked this job with this reason (its own words, before notes of preemption or refusals)."""
        was = self._of.get(job_id)
        if was is not None and was[0] is request:
            if was[1][1] == reason:
                return
            kind = was[1][0]
        else:
            kind = self._kind(told_alike(request))
        key = (kind, reason)
        if was is not None:
            self._leave(job_id, was[1])
        self._of[job_id] = (request, key)
        self._join(key, job_id)

    def _kind(self, alike: tuple[object, ...]) -> int:
        kind = self._kinds.get(alike)
        if kind is None:
            if len(self._kinds) >= INTERNED_KINDS:
                self._kinds.clear()  # a bound, not a leak: kinds seen once must not stay (new ids: never reused)
            kind = self._kinds[alike] = self._next_kind
            self._next_kind += 1
        return kind

    def left(self, job_id: JobId) -> None:
        """The job no longer waits (placed, ended): it tells no group's reason."""
        old = self._of.pop(job_id, None)
        if old is not None:
            self._leave(job_id, old[1])
        asked = self._asked.pop(job_id, None)
        if asked is not None:
            self._asking.discard(asked[0])
            self._marked.setdefault(asked[0])  # not answered: another of the group is asked next

    def _leave(self, job_id: JobId, key: GroupKey) -> None:
        members = self._groups.get(key)
        if members is None:
            return
        members.pop(job_id, None)
        if not members:
            self._drop(key)

    def _join(self, key: GroupKey, job_id: JobId) -> None:
        members = self._groups.get(key)
        if members is None:
            members = self._groups[key] = {}
            message = key[1].message
            if UNNAMED in message or not message.startswith("0/"):  # counts clusters, or is not one per cluster
                self._unnamed.add(key)
            for word in _words(message):
                self._named.setdefault(word, set()).add(key)
        members[job_id] = None

    def _drop(self, key: GroupKey) -> None:
        self._groups.pop(key, None)
        self._marked.pop(key, None)
        self._last_ask.pop(key, None)
        self._unnamed.discard(key)
        for word in _words(key[1].message):
            keys = self._named.get(word)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._named[word]

    def cluster_changed(self, cluster: str) -> None:
        """A report of `cluster` changed its room, or the cluster its state (Partitioned, Lost: once per turn of
        the loop, job_message.ClusterNotes): mark the groups whose reason may tell of it."""
        for key in self._named.get(cluster, ()):
            self._marked.setdefault(key)
        self._heard = True  # and the groups that name no cluster, once, at the next plan (`ask`)

    def ask(self, now: float, parked: Container[JobId]) -> list[JobId]:
        """One parked job of each marked group not asked within `min_ask_seconds`, in the order they were marked,
        at most `asks_per_plan` of them, while the write budget is not spent: the plan brings them back."""
        out: list[JobId] = []
        if self._heard:
            self._heard = False
            for key in self._unnamed:
                self._marked.setdefault(key)
        self._refill(now)
        may = self._tokens  # the most this plan's answers may tell (they are charged as told: `tell`)
        for key in list(self._marked):
            if may <= 0 or len(out) >= self.asks_per_plan:
                break  # what is left stays marked: asked by the next plans
            if key in self._asking or now - self._last_ask.get(key, -self.min_ask_seconds) < self.min_ask_seconds:
                continue
            del self._marked[key]
            members = self._groups.get(key, {})
            one = next((j for j in members if j in parked), None)
            if one is None:  # its jobs were all brought back by other events: each gets its own reason
                continue
            self._asked[one] = (key, now)
            self._asking.add(key)
            may -= len(members) - 1
            self._last_ask[key] = now
            out.append(one)
        return out

    def answer(self, job_id: JobId, reason: Reason) -> None:
        """The asked job is parked again with `reason` (its own words): the parked jobs of its old group are to
        be told it too (`tell`), in slices: 100,000 of them at once held the event loop."""
        asked = self._asked.pop(job_id, None)
        if asked is None:
            return
        key, at = asked
        self._asking.discard(key)
        if reason == key[1]:
            return
        new = (key[0], reason)  # the group under its new reason: asked again no sooner than the old one
        self._last_ask[new] = max(at, self._last_ask.get(new, at))
        self._telling.append((key, reason, [j for j in self._groups.get(key, {}) if j != job_id]))

    def tell(self, jobs: Mapping[JobId, Job], parked: Container[JobId],
             limit: int | None = None) -> tuple[list[tuple[Job, Reason | None]], bool]:
        """Tell up to `limit` jobs (None: all) their group's new reason: (each job whose reason changed, with its
        old reason), and whether more are still to be told. A job re-parked meanwhile with a reason of its own, or
        brought back, is left as it is."""
        out: list[tuple[Job, Reason | None]] = []
        budget = limit if limit is not None else -1
        while self._telling and budget != 0:
            key, reason, members = self._telling[0]
            new = (key[0], reason)
            while members and budget != 0:
                member = members.pop()
                budget -= 1
                job, grouped = jobs.get(member), self._of.get(member)
                if job is None or grouped is None or grouped[1] != key or member not in parked or \
                        job.phase is not JobPhase.PENDING:
                    continue
                was = job.pending_reason
                job.pending_reason = keep_interruption(was, reason)
                self._leave(member, key)
                self._of[member] = (grouped[0], new)
                self._join(new, member)
                if was != job.pending_reason:
                    out.append((job, was))
            if not members:
                self._telling.popleft()
        self._spend(len(out))
        return out, bool(self._telling)

    def _refill(self, now: float) -> None:
        if self._tokens_at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._tokens_at) * self.told_per_second)
        self._tokens_at = now

    def _spend(self, told: int) -> None:
        self._tokens -= told  # after the fact: a group is told whole, and the next asks wait for the debt


def _words(message: str) -> set[str]:
    """The words of a reason that may be a cluster's name (a Kubernetes object's name: letters, digits, '-', '.')."""
    return {w.rstrip(".-") for w in _WORD.findall(message)}


def room_changed(previous: ClusterCapacity, capacity: ClusterCapacity) -> bool:
    """Whether a report moved anything a waiting job's reason tells of a cluster: its pools (free, shapes,
    quota held back), its CPU and memory free, or the workload kinds it runs. Not the placements it lists."""
    return (capacity.accelerator_pools != previous.accelerator_pools
            or capacity.cpu_milli_free != previous.cpu_milli_free
            or capacity.memory_bytes_free != previous.memory_bytes_free
            or capacity.node_cpu_milli_free_max != previous.node_cpu_milli_free_max
            or capacity.node_memory_bytes_free_max != previous.node_memory_bytes_free_max
            or capacity.workload_kinds != previous.workload_kinds)


__all__ = ["MIN_ASK_SECONDS", "TOLD_BURST", "TOLD_PER_SECOND", "ReasonRefresh", "room_changed", "told_alike"]
