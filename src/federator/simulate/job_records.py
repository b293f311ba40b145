"""A job YAML workload, and what the live federator recorded of its jobs: last month's demand, replayed.

`federator get jobs -o yaml` (a YAML stream) or `-o json` (a JSON list) writes each job as a FederatedJob document
with its status. `sim` took the spec and dropped the status, so every recorded job arrived at t=0 and never ended
(outside QA, planners P4). Here a job's times are, first what a planner wrote (the `federator.io/sim-arrival` and
`federator.io/sim-duration` annotations: an edit to try a what-if wins), else what was recorded:

- arrival: `status.submittedAt`, in seconds after the earliest `submittedAt` of the workload;
- run time: `status.totalRunSeconds` (every attempt), else `finishedAt` - `startedAt`, for a job that ended;
- a job still Running or Placed when the list was taken, or still Pending, runs past the end of the replay:
  what it does after the list was taken is not known (its `sim-duration` annotation says it, if a planner knows);
- a job that ended without running (cancelled or failed while it waited) is left out, and `note` says how many:
  it held nothing, and how long it would have run is not known.

A job with neither (a hand-written job file) arrives in file order, one second apart, as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from federator.backends.sim.runtime import ARRIVAL_ANNOTATION, DURATION_ANNOTATION, parse_duration
from federator.jobfile import FieldProblem, JobFileError, parse_job
from federator.jobfile_loading import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, job_paths, load_job_files
from federator.jobsource import read_job_text, source_name
from federator.model import JobPhase, JobSpec
from federator.simulate.sim_job import SimJob
from federator.yamltext import load_documents

_ENDED_UNRUN = (JobPhase.CANCELLED.value, JobPhase.FAILED.value, JobPhase.SUCCEEDED.value)


class RecordError(ValueError):
    """A recorded status field that cannot be read; names the file, the document and the field."""


def load_job_records(path: Path, *, note: Callable[[str], None] | None = None) -> list[SimJob]:
    """The jobs of a job file (or a folder of them), with their arrival and run times (in file order)."""
    specs: list[JobSpec] = []
    statuses: list[tuple[str, Mapping[str, Any] | None]] = []  # (where, status) per spec
    for f in job_paths([path]):
        got, docs = _file(f)
        specs.extend(got)
        where = source_name(f)
        statuses.extend((f"{where}: document {i + 1}", _status(d)) for i, d in enumerate(docs or [None] * len(got)))
    submitted = [_time(s, "submittedAt", w) for w, s in statuses]
    start = min((t for t in submitted if t is not None), default=0.0)
    jobs: list[SimJob] = []
    unrun = 0
    for i, (spec, (where, status), at) in enumerate(zip(specs, statuses, submitted, strict=True)):
        arrival = parse_duration(spec.annotation(ARRIVAL_ANNOTATION), at - start if at is not None else float(i))
        written = parse_duration(spec.annotation(DURATION_ANNOTATION), -1.0)
        if written >= 0:
            jobs.append(SimJob(spec, arrival, written))
            continue
        ran = _run_seconds(status, where)
        if isinstance(ran, str):  # ended without running
            unrun += 1
            continue
        jobs.append(SimJob(spec, arrival, ran))
    if unrun and note is not None:
        note(f"{path}: {unrun} recorded job{'s' if unrun != 1 else ''} ended without running (cancelled or failed "
             "while waiting): left out of the replay")
    return jobs


def _file(f: Path) -> tuple[list[JobSpec], Sequence[Any] | None]:
    """A file's specs, and its documents when they may carry a recorded status (None: none does)."""
    try:
        specs = load_job_files(f)
    except JobFileError:
        items = _json_list(f)
        if items is None:
            raise
        return _parse_each(items, source_name(f)), items
    text = read_job_text(f, limit=MAX_FILE_BYTES)
    if "submittedAt" not in text:  # a hand-written job file: no second reading
        return specs, None
    docs = load_documents(text, max_depth=MAX_DEPTH, max_values=MAX_VALUES)  # as load_job_files read it
    return specs, docs if len(docs) == len(specs) else None


def _json_list(f: Path) -> list[Any] | None:
    """The documents of a JSON list (`federator get jobs -o json`), else None."""
    try:
        doc = json.loads(read_job_text(f, limit=MAX_FILE_BYTES))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, list) and doc and all(isinstance(d, dict) for d in doc) else None


def _parse_each(items: Sequence[Any], source: str) -> list[JobSpec]:
    specs: list[JobSpec] = []
    problems: list[FieldProblem] = []
    for i, doc in enumerate(items):
        try:
            specs.append(parse_job(doc, source=source))
        except JobFileError as exc:
            problems.extend(FieldProblem(f"document {i + 1}: {p.field}", p.problem) for p in exc.problems)
    if problems:
        raise JobFileError(problems, source)
    return specs


def _status(doc: object) -> Mapping[str, Any] | None:
    status = doc.get("status") if isinstance(doc, Mapping) else None
    return status if isinstance(status, Mapping) else None


def _time(status: Mapping[str, Any] | None, key: str, where: str) -> float | None:
    """A recorded RFC 3339 time in Unix seconds; None when absent or empty."""
    raw = status.get(key) if status is not None else None
    if raw in (None, ""):
        return None
    try:
        if not isinstance(raw, str):
            raise ValueError
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise RecordError(f"{where}: status.{key}: must be an RFC 3339 time such as 2026-12-06T18:06:46Z, "
                          f"got {raw!r}") from None


def _run_seconds(status: Mapping[str, Any] | None, where: str) -> float | None | str:
    """How long a recorded job ran: seconds, None (still running or waiting: past the end), or "unrun"."""
    if status is None:
        return None
    phase = status.get("phase")
    if phase not in _ENDED_UNRUN:
        return None
    total = status.get("totalRunSeconds", 0)
    if isinstance(total, bool) or not isinstance(total, int | float) or not 0 <= total < float("inf"):
        raise RecordError(f"{where}: status.totalRunSeconds: must be a number of seconds, got {total!r}")
    if total > 0:
        return float(total)
    started, finished = _time(status, "startedAt", where), _time(status, "finishedAt", where)
    if started is not None and finished is not None and finished >= started:
        return finished - started
    return "unrun" if started is None else 0.0


__all__ = ["RecordError", "load_job_records"]
