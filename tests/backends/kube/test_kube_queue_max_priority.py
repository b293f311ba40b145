"""A Queue object's spec.maxPriority bounds its jobs' spec.priority as the policy file's does, and a Queue with
an access list makes the federation multi-tenant (queues without a bound then grant 0; security finding M1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_kube_queues import POLICY, _NoApi, queue_object

from federator.backends.kube.queue_controller import QueueController
from federator.backends.kube.queues import queue_from_object
from federator.scheduler import PolicyError, QueueConfig, Scheduler, parse_policy
from federator.server.federator import Federator
from federator.store import SqliteJobStore


def test_a_queue_objects_max_priority_is_read_and_checked() -> None:
    assert queue_from_object(queue_object("research", {"maxPriority": 50})) == QueueConfig(max_priority=50)
    with pytest.raises(PolicyError, match=r"Queue research: spec\.maxPriority: must be an integer"):
        queue_from_object(queue_object("research", {"maxPriority": 5_000_000}))


def test_a_queue_object_with_an_access_list_bounds_the_queues_without_a_max_priority(tmp_path: Path) -> None:
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), scheduler=Scheduler(parse_policy(POLICY)))
    ctl = QueueController(fed, _NoApi())  # type: ignore[arg-type]
    assert fed.scheduler.config.max_priority("serving")[0] == 1_000_000  # the file alone: single-tenant
    ctl.apply([queue_object("team-a", {"access": {"groups": ["team-a"]}, "maxPriority": 10})])
    assert fed.scheduler.config.max_priority("team-a") == (10, "queue 'team-a' maxPriority")
    assert fed.scheduler.config.max_priority("serving")[0] == 0
    ctl.apply([])
    assert fed.scheduler.config.max_priority("serving")[0] == 1_000_000
