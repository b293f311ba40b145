"""Job arrays (`sbatch --array=0-99%10`): one Submit makes a task job per index, sharing an array id.

Why: a sweep of 100 runs that differ only by an index was 100 `federator submit` calls from a shell loop (~1 s
each on a login node), with no way to say "at most 10 at once" (outside QA, HPC H9). SubmitRequest.array asks the
federator for the tasks at once; each task is an ordinary job named `<name>-<index>` whose spec carries what array
it belongs to (`ArrayTask`). Kept as annotations, as a dependency is (model/dependency.py): part of the spec, never
changed once submitted, stored with it and so kept over a restart; the wire gives it as a field of its own
(types.proto ArrayTask), and a submitted spec may not carry these annotations itself (only the federator sets them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ARRAY_ID_ANNOTATION = "federator.io/array-id"
ARRAY_TASK_ANNOTATION = "federator.io/array-task-id"
ARRAY_MAX_RUNNING_ANNOTATION = "federator.io/array-max-running"
ARRAY_ANNOTATIONS = (ARRAY_ID_ANNOTATION, ARRAY_TASK_ANNOTATION, ARRAY_MAX_RUNNING_ANNOTATION)
# Kubernetes mode only: the array object's name on each of its tasks (backends/kube/arrays.py), so a
# spec.dependsOn key may name the array as a GitOps repository writes it (server/dependencies.py `named_arrays`).
# A standalone array has only its id; so the tasks of an array made before 0.18.0 (none carry it).
ARRAY_NAME_ANNOTATION = "federator.io/array-name"

MAX_ARRAY_TASKS = 1000
"""Tasks in one array. Slurm's MaxArraySize defaults to 1001 (indices 0-1000); an array is all-or-nothing and
written in one store commit, and a user's pending cap (--max-pending-jobs-per-user) bounds it further."""
MAX_ARRAY_INDEX = 99999
"""The largest index: a task's name is `<name>-<index>`, so an index adds at most six characters to it."""

_ARRAY_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{0,259}$")  # "<name>-<6 hex>": a job name's 253, and 7
_RANGE = re.compile(r"^(\d{1,6})(?:-(\d{1,6})(?::(\d{1,6}))?)?$")


@dataclass(frozen=True, slots=True)
class ArrayTask:
    """What array a task job belongs to: the array's id, this task's index, and the array's throttle (0: none)."""

    array_id: str
    task_id: int
    max_running: int = 0

    def annotations(self) -> dict[str, str]:
        out = {ARRAY_ID_ANNOTATION: self.array_id, ARRAY_TASK_ANNOTATION: str(self.task_id)}
        if self.max_running:
            out[ARRAY_MAX_RUNNING_ANNOTATION] = str(self.max_running)
        return out


@dataclass(frozen=True, slots=True)
class ArrayRequest:
    """A checked array request: the task indices in ascending order, and at most how many may run at once."""

    indices: tuple[int, ...]
    max_running: int = 0


def parse_indices(text: str, max_running: int = 0) -> ArrayRequest | str:
    """`0-99`, `1,3,5-7`, `0-15:4` (a step), each optionally followed by `%N` (at most N at once, Slurm's
    throttle), into an ArrayRequest; or what is wrong, led by the field it is about (`array.indices`,
    `array.max_running`). `max_running` is the field given apart (SubmitRequest.array.max_running); a `%N` in the
    text and a different field are a conflict."""
    body, percent, throttle = text.strip().partition("%")
    if percent:
        if not throttle.isdigit() or int(throttle) < 1:
            return f"array.indices: the throttle after % must be a whole number >= 1, got {throttle[:20]!r}"
        if max_running and max_running != int(throttle):
            return f"array.max_running: {max_running} disagrees with the %{throttle} of array.indices"
        max_running = int(throttle)
    if max_running < 0:
        return f"array.max_running: must be 0 (no throttle) or more, got {max_running}"
    if not body:
        return "array.indices: must not be empty: give indices as 0-99, 1,3,5-7 or 0-15:4, optionally %N"
    found: set[int] = set()
    for part in body.split(","):
        m = _RANGE.match(part.strip())
        if m is None:
            return (f"array.indices: {part.strip()[:40]!r} is not an index, a range a-b or a stepped range a-b:s "
                    "(indices as 0-99, 1,3,5-7 or 0-15:4, optionally %N)")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        step = int(m.group(3)) if m.group(3) is not None else 1
        if last < first or step < 1:
            return f"array.indices: {part.strip()!r} is an empty range (a-b needs a <= b, a step >= 1)"
        if last > MAX_ARRAY_INDEX:
            return f"array.indices: index {last} is above the largest, {MAX_ARRAY_INDEX}"
        if (last - first) // step + 1 + len(found) > MAX_ARRAY_TASKS:
            break
        found.update(range(first, last + 1, step))
    else:
        return ArrayRequest(tuple(sorted(found)), max_running)
    return (f"array.indices: {body[:40]!r} names more than {MAX_ARRAY_TASKS} tasks, the most one array may have "
            "(split it, or submit a multi-document job file)")


def array_id_problem(array_id: str) -> str | None:
    """What is wrong with an array id a request names (CancelJobsRequest.array_id, ListJobsFilter.array_id), or
    None."""
    if _ARRAY_ID.match(array_id):
        return None
    return "must be an array id (a-z 0-9 . -, at most 260 characters, as types.proto ArrayTask.array_id)"


def array_of(annotations: dict[str, str]) -> ArrayTask | None:
    """The array a spec's annotations say its job is a task of; None for a job of no array (or annotations that do
    not read: Submit refuses a spec that carries them itself)."""
    array_id, task = annotations.get(ARRAY_ID_ANNOTATION, ""), annotations.get(ARRAY_TASK_ANNOTATION, "")
    if not array_id or not task.isdigit():
        return None
    throttle = annotations.get(ARRAY_MAX_RUNNING_ANNOTATION, "0")
    return ArrayTask(array_id, int(task), int(throttle) if throttle.isdigit() else 0)


__all__ = ["ARRAY_ANNOTATIONS", "ARRAY_ID_ANNOTATION", "ARRAY_MAX_RUNNING_ANNOTATION", "ARRAY_NAME_ANNOTATION",
           "ARRAY_TASK_ANNOTATION", "MAX_ARRAY_INDEX", "MAX_ARRAY_TASKS", "ArrayRequest", "ArrayTask",
           "array_id_problem", "array_of", "parse_indices"]
