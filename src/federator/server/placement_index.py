"""Which job each placement id is of, for every placement of a live job, current or not.

Why it exists: an agent's report names a placement id only, and the federator must find its job (the report's
path, a refusal, a shrink, an invalid spec), and tell a placement of a job it knows, superseded since (refused,
lost, moved, failed early, a new generation), from one newer than its store (server/orphans.py: an orphan). So an
entry lives while its job lives, earlier placements included, and goes when the job is forgotten (retention, a
deleted FederatedJob in Kubernetes mode).

Why a module of its own: the index was a plain dict written by the cycle, adoption, moves and drains' surges, and
nothing but a pass over all of it could find a forgotten job's earlier placements, which its job no longer lists
(outside QA, soak S5: they stayed for ever; the first fix scanned the whole index per retention batch, and in
Kubernetes mode once the forgotten jobs were 1/64 of it: O(index) on the event loop with a national backlog).
Here each job's placement ids are kept beside the index, so forgetting a job costs its own placements, and the
index is written only through `add` and `forget_job`. Reads are a Mapping's (`get`, `in`, `len`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar, overload

from federator.model import Job, JobId

T = TypeVar("T")


class PlacementIndex(Mapping[str, JobId]):
    """placement id -> job id, and each job's placement ids (so `forget_job` touches that job's entries only)."""

    __slots__ = ("_job", "_placements")

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        self._job: dict[str, JobId] = {}
        self._placements: dict[JobId, list[str]] = {}  # a list: a set of 3 ids is 216 bytes, a list 88
        for job in jobs:  # a start: the placements the store holds (earlier ones are not stored)
            for p in job.placements:
                self.add(p.placement_id, job.job_id)

    def add(self, placement_id: str, job_id: JobId) -> None:
        """`placement_id` is of `job_id` (a new placement, or an adopted one). Ids name their job
        (server/new_placements.py), so one never moves to another job; if it did, the later job has it."""
        was = self._job.get(placement_id)
        if was == job_id:
            return
        if was is not None:
            self._drop(was, placement_id)
        self._job[placement_id] = job_id
        self._placements.setdefault(job_id, []).append(placement_id)  # new here: `_job` said so above

    def forget_job(self, job_id: JobId) -> int:
        """Drop every entry of a forgotten job, its earlier placements' too; how many went."""
        pids = self._placements.pop(job_id, [])
        for pid in pids:
            del self._job[pid]
        return len(pids)

    def placements_of(self, job_id: JobId) -> frozenset[str]:
        """The placement ids kept for `job_id`: those its job lists and the earlier ones it no longer does."""
        return frozenset(self._placements.get(job_id, ()))

    def _drop(self, job_id: JobId, placement_id: str) -> None:
        pids = self._placements[job_id]
        pids.remove(placement_id)
        if not pids:
            del self._placements[job_id]

    def __getitem__(self, placement_id: str) -> JobId:
        return self._job[placement_id]

    @overload
    def get(self, placement_id: str, /) -> JobId | None: ...
    @overload
    def get(self, placement_id: str, /, default: JobId | T) -> JobId | T: ...
    def get(self, placement_id: str, /, default: object = None) -> object:
        return self._job.get(placement_id, default)  # a dict's, not Mapping's try/except: misses are common

    def __contains__(self, placement_id: object) -> bool:
        return placement_id in self._job

    def __iter__(self) -> Iterator[str]:
        return iter(self._job)

    def __len__(self) -> int:
        return len(self._job)

    def __repr__(self) -> str:
        return f"PlacementIndex({self._job!r})"


__all__ = ["PlacementIndex"]
