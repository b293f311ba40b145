"""A dependency check against a federator holding a national backlog (server/dependencies.py, server/array_index.py).

A spec.dependsOn key that names no job is looked up as an array: by its id and, in Kubernetes mode, by its
object's name. Each lookup was a scan of every job's annotations, on the event loop, at every dependent's Submit
and each of its judgements. This holds `--jobs` jobs in a job table (one in `--array-every` a task of an array of
100, named as the Kubernetes controller names its tasks), and times in the calling thread's CPU time, median of
`--runs`: `resolved` of a dependent naming an array by its object's name; `resolved` of one naming an array by its
id; `named_arrays` of a name no array has (a FederatedJob not accepted yet, a typo).

    PYTHONPATH=src .venv/bin/python bench/dependency_arrays.py --jobs 30000

It runs on an older checkout too (PYTHONPATH=that/src), which scans: the before.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

from common import jobs

from federator.model import DEPENDS_ON_ANNOTATION, Job, JobId
from federator.model.array import ARRAY_NAME_ANNOTATION, ArrayTask
from federator.server.dependencies import named_arrays, resolved, same_namespace
from federator.server.job_table import JobTable

NAMESPACE = "team-a"


def table(n: int, every: int) -> tuple[JobTable, str]:
    """`n` jobs of one namespace, one in `every` a task of an array of 100 tasks; the id of the last array."""
    held: list[Job] = []
    array_id = ""
    for i, r in enumerate(jobs(n, seed=5)):
        annotations = dict(r.spec.annotations)
        if i % every == 0:
            array = i // every // 100
            array_id = f"sweep{array}-{array:06x}"
            annotations.update(ArrayTask(array_id, i // every % 100).annotations())
            annotations[ARRAY_NAME_ANNOTATION] = f"sweep{array}"
        spec = replace(r.spec, namespace=NAMESPACE, annotations=tuple(sorted(annotations.items())))
        held.append(Job(job_id=JobId(f"{r.spec.name}-{i:06x}"), spec=spec, submitted_at=float(i)))
    return JobTable(held), array_id


def timed(fn: Callable[[], object], runs: int) -> float:
    """Median CPU milliseconds of `fn` over `runs` calls."""
    out = []
    for _ in range(runs):
        start = time.thread_time()
        fn()
        out.append((time.thread_time() - start) * 1000)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=30_000)
    ap.add_argument("--array-every", type=int, default=10, help="one job in this many is an array's task")
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    held, array_id = table(args.jobs, args.array_every)
    name = array_id.rpartition("-")[0]
    base = next(iter(held.values())).spec

    def dependent(key: str) -> Callable[[], object]:
        spec = replace(base, name="merge", annotations=((DEPENDS_ON_ANNOTATION, f"afterok:{key}"),))
        return lambda: resolved(held, spec, same_namespace(spec))

    tasks = sum(1 for j in held.values() if j.spec.array is not None)
    print(f"{len(held)} jobs held, {tasks} of them array tasks")
    print(f"resolved, an array by its object's name: {timed(dependent(name), args.runs):.3f} ms")
    print(f"resolved, an array by its id:            {timed(dependent(array_id), args.runs):.3f} ms")
    print(f"named_arrays, a name no array has:       "
          f"{timed(lambda: named_arrays(held, NAMESPACE, 'typo'), args.runs):.3f} ms")


if __name__ == "__main__":
    main()
