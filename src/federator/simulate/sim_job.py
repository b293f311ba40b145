"""One job of a simulated workload.

Why a module of its own: the readers of workloads (traces.py for CSVs, job_records.py for job YAML and recorded
job lists) both make these, and traces.py hands YAML to job_records.py. Kept in traces.py, job_records.py
imported traces.py and traces.py could reach job_records.py only through an import deferred into a function:
an import cycle hidden from the linter (tests/test_static_checks.py now refuses one).
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.model import JobSpec


@dataclass(frozen=True, slots=True)
class SimJob:
    """A job of a workload: what to submit, when it arrives, and how long it runs once placed."""

    spec: JobSpec
    arrival: float
    duration: float | None  # None: runs past the end of the simulation


__all__ = ["SimJob"]
