"""The job arrays the federator holds, by id and (Kubernetes mode) by their object's name: kept by the job table.

Why: a spec.dependsOn key that names no job is looked up as an array, by its id (`ArrayTask.array_id`) or, in
Kubernetes mode, by the array object's name (model/array.py ARRAY_NAME_ANNOTATION). Both were a scan of every
job's annotations (server/dependencies.py `_tasks`, `named_arrays`), once per key of every dependent's Submit and
judgement: with 30,000 jobs held a check cost tens of milliseconds of the event loop (docs/benchmarks.md, "A
dependency on an array"). Like the table's other indexes, this one is derived from each job's spec alone, which
never changes while the job is in the table, so it is kept as jobs are set and removed (accepted and forgotten)
and rebuilt with the table on start (the store's jobs; in Kubernetes mode the informer's, read into the store).
"""

from __future__ import annotations

from federator.model import Job, JobId
from federator.model.array import ARRAY_NAME_ANNOTATION


class ArrayIndex:
    """array id -> its tasks' job ids; (namespace, array object's name) -> the ids of the arrays of that name."""

    def __init__(self) -> None:
        self._tasks: dict[str, set[JobId]] = {}
        self._named: dict[tuple[str, str], set[str]] = {}

    def add(self, job: Job) -> None:
        task = job.spec.array
        if task is None:
            return
        self._tasks.setdefault(task.array_id, set()).add(job.job_id)
        name = job.spec.annotation(ARRAY_NAME_ANNOTATION)
        if name:
            self._named.setdefault((job.spec.namespace, name), set()).add(task.array_id)

    def remove(self, job: Job) -> None:
        task = job.spec.array
        if task is None:
            return
        ids = self._tasks.get(task.array_id)
        if ids is None:
            return
        ids.discard(job.job_id)
        if ids:
            return
        del self._tasks[task.array_id]  # its last task gone: the array is gone, and its name no longer names it
        name = job.spec.annotation(ARRAY_NAME_ANNOTATION)
        arrays = self._named.get((job.spec.namespace, name)) if name else None
        if arrays is not None:
            arrays.discard(task.array_id)
            if not arrays:
                del self._named[(job.spec.namespace, name)]

    def tasks(self, array_id: str) -> frozenset[JobId]:
        """The job ids of the array's tasks held now (empty: no array of that id)."""
        return frozenset(self._tasks.get(array_id, ()))

    def named(self, namespace: str, name: str) -> tuple[str, ...]:
        """The ids of the arrays whose object is `name` in `namespace`, sorted."""
        return tuple(sorted(self._named.get((namespace, name), ())))


__all__ = ["ArrayIndex"]
