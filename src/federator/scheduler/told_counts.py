"""Counts and amounts as a waiting job's reason tells them: as ranges that change rarely, not exact figures.

Why: a pending reason is stored with its job, and in Kubernetes mode each new wording is a PATCH of the
FederatedJob's status. Reasons that said the exact number of jobs of the queue ahead of the owner's ("12 waiting
jobs of queue default go before its owner's"), or what the queue holds against its fair share ("holds 13
accelerators; its weighted fair share now is 12.8"), were reworded for every waiting job of an owner or a queue
each time a job arrived, started or ended ahead of them: most of the ~545 status writes of a restart with 500 jobs,
and of the ~10 writes per deleted job (kubescaleqa62 H1, M2). Told as ranges, the words change about each time a
figure doubles or halves; the exact figures are read on demand (`federator get queues`: the queue's holding and
fair share, the jobs before the caller's).
"""

from __future__ import annotations


def about(n: int) -> str:
    """`n` as a reason tells it: 0 and 1 exactly, then 2 to 4, 5 to 9, 10 to 19, 20 to 49, 50 to 99, 100 to 199
    and so on (steps of 1, 2, 5 times a power of ten). A count that moves within a range leaves the words as
    they were."""
    if n <= 1:
        return f"{max(n, 0)}"
    low, scale = 1, 1
    while True:
        for step in (1, 2, 5):
            if step * scale > n:
                return f"{low:,} to {step * scale - 1:,}"
            low = step * scale
        scale *= 10


def amount(x: float) -> str:
    """An amount of accelerators (fractions count as such) as a reason tells it: 0, "less than 1", or the range
    (`about`) of its whole part."""
    if x <= 0:
        return "0"
    return "less than 1" if x < 1 else about(int(x))


__all__ = ["about", "amount"]
