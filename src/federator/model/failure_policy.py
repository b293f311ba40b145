"""What a job asks of a failure: how many times it may be placed again after it failed (spec.failurePolicy).

Why its own type: a late failure (an NCCL timeout at hour 30, a node's ECC error, a loss spike that crashes) ended
a job for good and its user resubmitted by hand (outside migration QA, M12: SkyPilot's `max_restarts_on_errors`,
JobSet's `failurePolicy.maxRestarts`, Slurm's `--requeue`). JobSet's name is kept: `maxRestarts` reads right next
to the job's `restarts` (every restart, a lost cluster's too), and the budget it bounds is its failure restarts
alone (`Job.failure_restarts`, JobSet's `restartsCountTowardsMax`). server/failure_restarts.py keeps the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_RESTARTS_LIMIT = 100
"""The most a job may ask: a job failing more often than this is broken, and each run is billed (JobSet leaves
it unbounded; a bound keeps a crash loop from holding accelerators for days)."""


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """`max_restarts`: how many times the job is placed again after its member reports it Failed (0: never, the
    default: a failure is final, as before 0.18.0)."""

    max_restarts: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.max_restarts <= MAX_RESTARTS_LIMIT:
            raise ValueError(f"max_restarts: must be 0 to {MAX_RESTARTS_LIMIT}, got {self.max_restarts}")

    @property
    def set(self) -> bool:
        """It asks for anything (a spec without it is stored, sent and shown as before)."""
        return self.max_restarts > 0


__all__ = ["MAX_RESTARTS_LIMIT", "FailurePolicy"]
