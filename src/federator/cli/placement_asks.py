"""Whether a federator kept a submitted job's 0.19.0 placement asks (spec.regions.weights, spec.prefer).

Why its own module: a federator before 0.19.0 drops the unknown fields of a JobSpec and places the job by its
policy alone; the user asked for a split or the cheapest place and would not learn it was lost. `federator submit`
reads the job the Submit returned (as it does for spec.failurePolicy) and takes it back when an ask is missing.
"""

from __future__ import annotations

from federator.api.v1 import types_pb2
from federator.model import JobSpec


def dropped_asks(sent: types_pb2.JobSpec, kept: JobSpec) -> str:
    """The job-file names of the asks `sent` made that `kept` (the federator's job) lacks; "" when none."""
    lost = []
    if sent.region_weights and not kept.region_weights:
        lost.append("spec.regions.weights")
    if sent.prefer and not kept.prefer:
        lost.append("spec.prefer")
    return " and ".join(lost)


__all__ = ["dropped_asks"]
