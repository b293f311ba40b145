"""Held jobs count toward the federator's pending cap (--max-pending-jobs), as toward a user's and a queue's.

A held job is no scheduling candidate (server/job_holds.py), and the cap read the candidates: every job held and
left out of a cycle's plan made room for one more, so a tenant could keep any number waiting by holding them.
"""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, make

from federator.security.limits import Limits
from federator.server.intake import QueueFull
from federator.server.job_holds import Actor, hold

from builders import job


def test_held_jobs_count_toward_the_federators_pending_cap() -> None:
    fed = make(MemoryStore(), Clock(), limits=Limits(max_pending_jobs=2, max_pending_jobs_per_queue=10,
                                                    max_pending_jobs_per_user=10))
    for name in ("a", "b"):
        hold(fed, fed.submit(job(name, gpus=8, models=("H100",))), Actor("alice"))
    fed.schedule_once()  # the held jobs leave the candidates
    assert fed.cycles.pending_count == 0
    with pytest.raises(QueueFull, match="2 jobs are pending, its limit is 2"):
        fed.submit(job("c", gpus=8, models=("H100",)))
