"""The federator's jobs by id, also kept in submission order, by owner, by recorded group and by name.

List and Watch serve jobs in submission order, a page at a time, and each caller sees only the jobs the
tenancy policy lets them see. Done on a plain dict, every List page sorted every job and asked the policy about
each: with a national backlog of 100,000 jobs, half a second of the event loop per page for a tenant, during
which no agent's report, no Submit and no other read was served, and a tenant paging through its jobs paid it
200 times. Here the order is kept as jobs come and go, so a page starts at its token by bisection, and a
tenant's page reads only the jobs of the owners and recorded groups it may see (`View`), merged in order.

The indexes are derived from each job's spec alone (its id, submission time, name, and the owner and groups the
federator recorded on it), which never change while the job is in the table; the policy (which groups a user
is in) is applied when a page is read, so a policy change needs no re-index.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from federator.model import Job, JobId
from federator.security.authz import owner_of
from federator.server.array_index import ArrayIndex

Key = tuple[float, str]  # (submitted_at, job_id): submission order, as the page tokens name a position


@dataclass(frozen=True, slots=True)
class View:
    """Whose jobs a caller may see: those owned by `owners`, and those recorded with one of `groups`. None in
    place of a View means every job (an administrator)."""

    owners: frozenset[str]
    groups: frozenset[str]


def _key(job: Job) -> Key:
    return (job.submitted_at, job.job_id)


def _insert(keys: list[Key], key: Key) -> None:
    if not keys or keys[-1] < key:
        keys.append(key)  # the usual case: a job submitted now is the newest
    else:
        bisect.insort(keys, key)


def _remove(keys: list[Key], key: Key) -> None:
    i = bisect.bisect_left(keys, key)
    if i < len(keys) and keys[i] == key:
        del keys[i]


def _after(keys: list[Key], after: Key | None) -> Iterator[Key]:
    start = 0 if after is None else bisect.bisect_right(keys, after)
    return (keys[i] for i in range(start, len(keys)))


def _before(keys: list[Key], before: Key | None) -> Iterator[Key]:
    """The keys before `before`, newest first (a newest-first page's position is its last job's key)."""
    end = len(keys) if before is None else bisect.bisect_left(keys, before)
    return (keys[i] for i in range(end - 1, -1, -1))


class JobTable(dict[JobId, Job]):
    """A dict of jobs by id that keeps its order and owner indexes as jobs are set and popped.

    Only `[id] = job`, `pop` and `del` change it (what the federator uses); the dict's bulk updates would bypass
    the indexes, so they raise."""

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        super().__init__()
        self._order: list[Key] = []
        self._by_owner: dict[str, list[Key]] = {}
        self._by_group: dict[str, list[Key]] = {}
        self._by_name: dict[str, set[JobId]] = {}
        self.arrays = ArrayIndex()  # job arrays by id and by object name (server/array_index.py)
        for job in sorted(jobs, key=_key):
            self[job.job_id] = job

    def __setitem__(self, job_id: JobId, job: Job) -> None:
        if job_id in self:
            self._unindex(dict.__getitem__(self, job_id))
        super().__setitem__(job_id, job)
        self._index(job)

    def __delitem__(self, job_id: JobId) -> None:
        self._unindex(dict.__getitem__(self, job_id))
        super().__delitem__(job_id)

    def pop(self, job_id: JobId, *default: Job | None) -> Job | None:  # type: ignore[override]
        if job_id in self:
            job = dict.__getitem__(self, job_id)
            del self[job_id]
            return job
        if default:
            return default[0]
        raise KeyError(job_id)

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("JobTable changes one job at a time ([id] = job, pop, del), keeping its indexes")

    update = setdefault = popitem = clear = _refuse  # type: ignore[assignment]

    def _index(self, job: Job) -> None:
        key = _key(job)
        _insert(self._order, key)
        owner, groups = owner_of(job.spec)
        if owner:  # a job no user submitted (a FederatedJob) is seen by administrators only, as authz.visible says
            _insert(self._by_owner.setdefault(owner, []), key)
            for g in groups:
                _insert(self._by_group.setdefault(g, []), key)
        self._by_name.setdefault(job.spec.name, set()).add(job.job_id)
        self.arrays.add(job)

    def _unindex(self, job: Job) -> None:
        key = _key(job)
        _remove(self._order, key)
        owner, groups = owner_of(job.spec)
        if owner:
            _drop(self._by_owner, owner, key)
            for g in groups:
                _drop(self._by_group, g, key)
        ids = self._by_name.get(job.spec.name)
        if ids is not None:
            ids.discard(job.job_id)
            if not ids:
                del self._by_name[job.spec.name]
        self.arrays.remove(job)

    def named(self, name: str) -> list[Job]:
        """The jobs of this name, in every namespace."""
        return [dict.__getitem__(self, i) for i in self._by_name.get(name, ())]

    def in_order(self, *, after: Key | None = None, view: View | None = None, queue: str = "", owner: str = "",
                 newest_first: bool = False) -> Iterator[Job]:
        """Jobs in submission order after the position `after` (newest first: in reverse, before it), of `queue`
        ("" = all), that `view` may see (None: all); with `owner` one the view sees every job of, only that
        owner's (read from the owner's index alone: "my jobs" reads no one else's; another owner's jobs the view
        sees through a group are read through the view, never that owner's other jobs, whose number a page's time
        would betray). Lazy: a page reads only as far as it fills. The caller still asks the policy about each job
        it serves (the View is an index, not the decision), and filters by owner."""
        step = _before if newest_first else _after
        if owner and (view is None or owner in view.owners):
            keys: Iterator[Key] = step(self._by_owner.get(owner, []), after)
        elif view is None:
            keys = step(self._order, after)
        else:
            lists = [self._by_owner[o] for o in view.owners if o in self._by_owner]
            lists += [self._by_group[g] for g in view.groups if g in self._by_group]
            keys = _unique(heapq.merge(*(step(keys, after) for keys in lists), reverse=newest_first))
        for _, job_id in keys:
            job = self.get(JobId(job_id))
            if job is not None and (not queue or job.spec.queue == queue):
                yield job


def _drop(index: dict[str, list[Key]], name: str, key: Key) -> None:
    keys = index.get(name)
    if keys is not None:
        _remove(keys, key)
        if not keys:
            del index[name]


def _unique(keys: Iterator[Key]) -> Iterator[Key]:
    last: Key | None = None
    for key in keys:
        if key != last:
            yield key
            last = key


__all__ = ["JobTable", "View"]
