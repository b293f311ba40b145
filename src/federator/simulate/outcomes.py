"""What a capacity planner reads of a simulation beyond the allocation ratio: who waited how long, which models and
regions were used over the run, and each job's outcome.

Why: the report said how full the fleet was and nothing of the jobs' side, so "add 512 Ascend: how much does the
wait drop, is any Ascend used, by whom?" had no answer (outside planners' QA, P1), and a replay's per-region ratio
was the empty end state beside a time-averaged total (P2). Here:

  - `Held`: accelerators held per key (a region, a model), kept as the engine binds and unbinds, sampled at every
    point of the allocation series, so its time average is the same kind of figure as the overall ratio's;
  - `JobRecord`: one job's outcome (where it ran, when it arrived, started and ended, why it still waits, in the
    scheduler's words beside the code), written by `write_jobs` as CSV or JSON lines;
  - `wait_summary`: submit-to-first-placement quantiles, overall, by queue and by the model the job asked.

Every key is snake_case, as the rest of the sim report (docs/operators.md, "Reading the sim report").
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from federator.model import MILLI, JobSpec

JOBS_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


@dataclass(slots=True)
class Held:
    """Milli-devices held per key now, and their time average over the samples (each sample holds until the next,
    as the overall ratio's series)."""

    capacity: dict[str, int]
    now: dict[str, int] = field(default_factory=dict)
    _area: dict[str, float] = field(default_factory=dict)
    _first: float | None = None
    _last: float | None = None
    _held: dict[str, int] = field(default_factory=dict)  # what the last sample saw: held until this one

    def add(self, key: str, milli: int) -> None:
        self.now[key] = self.now.get(key, 0) + milli

    def sample(self, t: float) -> None:
        if self._last is not None and t > self._last:
            for key, milli in self._held.items():
                self._area[key] = self._area.get(key, 0.0) + (t - self._last) * milli
        if self._first is None:
            self._first = t
        self._last = t
        self._held = dict(self.now)

    def table(self, *, averaged: bool) -> dict[str, dict[str, float]]:
        """Per key, sorted: capacity, allocated and idle accelerators and the allocated share; the time averages
        over the samples when `averaged` (and the span is not empty), else now."""
        span = (self._last or 0.0) - (self._first or 0.0)
        out: dict[str, dict[str, float]] = {}
        for key in sorted(self.capacity):  # keys without accelerators (CPU-only regions) are left out
            cap = self.capacity.get(key, 0)
            held = self._area.get(key, 0.0) / span if averaged and span > 0 else float(self.now.get(key, 0))
            out[key] = {"capacity": cap / MILLI, "allocated": round(held / MILLI, 6),
                        "idle": round(max(0.0, cap - held) / MILLI, 6),
                        "allocation_ratio": round(held / cap, 6) if cap else 0.0}
        return out


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job's outcome in a simulation: a row of `--jobs-out`. Times are simulated seconds (None in fill mode,
    which has no clock, and for what did not happen); where it ran is its last placement ("a|b" when a spread job
    took several clusters)."""

    job: str
    queue: str
    models_asked: str  # as the job asks: "H800", "A100|A800", "any" (any model), "none" (no accelerators)
    model: str
    cluster: str
    region: str
    accelerators: float  # held while placed, in devices (a fraction's share)
    arrival: float | None
    start: float | None  # the first placement
    end: float | None  # when it departed (or was last preempted and not placed again); None: running at the end
    wait_seconds: float | None  # start - arrival
    accelerator_hours: float | None  # held while placed, every run of it (replay)
    cost: float | None  # the same at its clusters' price-per-accelerator-hour labels (unpriced: 0)
    preemptions: int
    reason_code: str  # why it was never placed: the scheduler's code (as federator_pending_jobs{reason})
    reason: str  # and its words, as `federator get jobs` gives them
    never: str  # "fleet" / "quota" when no wait could place it (federator_never_runnable_jobs{reason}), else ""


def models_asked(spec: JobSpec) -> str:
    """What the job asks for, as a planner groups demand: the models (or vendors, or a memory floor) of its
    alternatives joined by "|", "any" for any model, "none" for CPU-only work."""
    names: list[str] = []
    for alt in spec.alternatives():
        name = alt.model or alt.vendor or (f"min{alt.min_memory_mib}MiB" if alt.min_memory_mib else "any")
        if name not in names:
            names.append(name)
    return "|".join(names) or "none"


def _stats(waits: Sequence[float], not_placed: int) -> dict[str, float]:
    ordered = sorted(waits)
    n = len(ordered)

    def q(p: float) -> float:
        return ordered[min(n - 1, int(p * n))] if n else 0.0

    return {"jobs_started": n, "jobs_not_started": not_placed, "p50": q(0.50), "p95": q(0.95),
            "max": ordered[-1] if n else 0.0, "mean": round(sum(ordered) / n, 3) if n else 0.0}


def wait_summary(records: Iterable[JobRecord]) -> dict[str, object]:
    """Submit-to-first-placement seconds of the jobs that started, overall, by queue and by `models_asked`, with
    how many never started (their wait is longer than the run: left out of the quantiles, counted beside them)."""
    groups: dict[tuple[str, str], tuple[list[float], list[int]]] = {}
    for r in records:
        for key in (("all", ""), ("by_queue", r.queue), ("by_model", r.models_asked)):
            waits, missing = groups.setdefault(key, ([], [0]))
            if r.wait_seconds is None:
                missing[0] += 1
            else:
                waits.append(r.wait_seconds)
    out: dict[str, object] = {"all": _stats(*_unpack(groups.get(("all", ""), ([], [0]))))}
    for part in ("by_queue", "by_model"):
        out[part] = {k: _stats(*_unpack(v)) for (p, k), v in sorted(groups.items()) if p == part}
    return out


def _unpack(v: tuple[list[float], list[int]]) -> tuple[list[float], int]:
    return v[0], v[1][0]


def jobs_format(path: Path) -> str | None:
    """The format a `--jobs-out` file is written in, by its suffix, or None for a suffix it does not know."""
    return JOBS_SUFFIXES.get(path.suffix.lower())


def write_jobs(path: Path, records: Sequence[JobRecord]) -> None:
    """One line per job: CSV with a header (empty cells for None) or JSON lines (null), by the file's suffix."""
    kind = jobs_format(path)
    if kind is None:
        raise ValueError(f"{path}: must end in {', '.join(JOBS_SUFFIXES)}")
    with path.open("w", newline="", encoding="utf-8") as out:
        if kind == "jsonl":
            for r in records:
                out.write(json.dumps(asdict(r)) + "\n")
            return
        w = csv.writer(out)
        w.writerow([f.name for f in fields(JobRecord)])
        for r in records:
            w.writerow(["" if v is None else v for v in (getattr(r, f.name) for f in fields(JobRecord))])


def by_key(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, milli in pairs:
        out[key] = out.get(key, 0) + milli
    return out


def counts(values: Iterable[str]) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))
