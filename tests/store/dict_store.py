"""A `JobStore` kept in a dict, for the tests of the group commit and its writer thread (tests/store).

Each of those tests needs a store that holds a write until the test lets it go (gates), or that says which thread
wrote; the three they kept were alike but for that (the duplicate finder paired them). Here is the one store, and
each test's is a subclass that says only what it does before a write lands (`before`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from federator.model import Job, JobId


class DictStore:
    """Every write lands in `docs`; `batches` records each (job id, phase, pending reason code), `writers` the
    thread that made it. A subclass's `before` runs first on the writing thread: it may wait there (a gate) or
    raise (a write that fails), and then nothing of that write is stored or recorded but its thread."""

    def __init__(self) -> None:
        self.docs: dict[JobId, Job] = {}
        self.batches: list[list[tuple[str, str, str]]] = []
        self.writers: list[threading.Thread] = []

    def before(self, jobs: list[Job]) -> None:
        """What a write does before it lands: nothing here."""

    def put(self, jobs: Iterable[Job]) -> None:
        jobs = list(jobs)
        self.writers.append(threading.current_thread())
        self.before(jobs)
        self.batches.append([(j.job_id, j.phase.value, j.pending_reason.code.value if j.pending_reason else "")
                             for j in jobs])
        for j in jobs:
            self.docs[j.job_id] = j

    def load(self) -> list[Job]:
        return list(self.docs.values())

    def close(self) -> None:
        pass
