"""An elastic training gang: one that may start with fewer replicas than it asks (JobSpec.min_replicas).

Why: a gang was all or nothing at its size, so a job torchrun could run on 2 to 4 nodes (`--nnodes=2:4`, a
PyTorchJob's elasticPolicy) waited `GangDoesNotFit ... fits 2 of 4 replicas` while 2 were free (outside QA, ML
platform E5). Stage 1 of elastic gangs, the contract:

- The gang is placed in ONE cluster, never split, at the largest count from `min_replicas` to `replicas` that fits
  there now, the cluster fitting most first (scheduler/elastic.py), all or nothing at that count. While fewer than
  `min_replicas` fit anywhere it waits as any gang does (GangDoesNotFit), and a reservation or preemption made for
  it (scheduler/reservation.py, preemption.py) aims at its minimum count, the count it can start at.
- The placement's `replicas` is the count placed, and every count of what a job holds reads the placement: the
  reservation of room, the queue's quota and fair share, usage and the bill are at that count, not at `replicas`.
- It stays at the count placed until it ends: `Job.replicas_waiting` is 0 once placed, so nothing is owed and no
  cycle places "the rest" (a gang's rest would be a second gang). Growing a running gang toward `replicas` is
  stage 2, not built: the agent's torchrun is told min:max so a later grow needs only new pods to join.
- A restart (failurePolicy, a lost member, preemption) places it again at what fits then; after its member stopped
  it, not below the count it ran at until that member's room may be offered again (at most 120 s:
  scheduler/elastic_regain.py, elasticqa63 1b).
- What a user sees: `get jobs` REASON (and the job's message, a FederatedJob's status.message) says
  "elastic: 2/4 replicas placed (spec.minReplicas 2); it runs at 2 until it ends" (`model.job.shortfall`); a
  FederatedJob's status.replicas is the count placed (kubectl's -o wide Placed column).

Not elastic: `min_replicas` 0 (the default, and every job stored before 0.21.0), equal to `replicas`, on an inference
job (which scales by replicas itself), or on a gang of unequal pod sets (placed whole: model/pod_sets.py).
"""

from __future__ import annotations

from federator.model.job import JobKind


def min_replicas_problem(*, kind: JobKind, replicas: int, min_replicas: object, pod_sets: bool = False) -> str:
    """What is wrong with a spec.minReplicas of a job of `kind` and `replicas` ("" when nothing): an integer from 1
    to replicas, training only, and not on a gang of unequal roles. 0 (absent) is always right."""
    if isinstance(min_replicas, bool) or not isinstance(min_replicas, int) or min_replicas < 0:
        # As the job file wrote it: YAML's `true`, not Python's `True` (elasticqa63)
        got = str(min_replicas).lower() if isinstance(min_replicas, bool) else repr(min_replicas)[:80]
        return f"must be a whole number from 1 to spec.replicas ({replicas}), got {got}"
    if not min_replicas:
        return ""
    if kind is not JobKind.TRAINING:
        return "applies to training jobs only (an inference job scales by spec.replicas itself: federator scale)"
    if min_replicas > replicas:
        return f"is {min_replicas}, above spec.replicas ({replicas}): the gang starts with at most its replicas"
    if pod_sets:
        return "a gang whose roles ask unequal amounts is placed whole; leave spec.minReplicas out"
    return ""


__all__ = ["min_replicas_problem"]
