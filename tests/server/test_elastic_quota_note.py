"""An elastic gang its queue's quota, not room, held short says so beside the count placed (scheduler/elastic.py
`quota_held`, model.job.shortfall)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from federator.model import ClusterCapacity, shortfall
from federator.scheduler import Scheduler
from federator.scheduler.config import QueueConfig, Quota, SchedulerConfig
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import job as job_spec
from builders import pool

H100 = "NVIDIA-H100-80GB-HBM3"


def _capacity(nodes: int) -> ClusterCapacity:
    return ClusterCapacity(accelerator_pools=(pool(H100, nodes=nodes),), cpu_milli_allocatable=10**6,
                           cpu_milli_free=10**6, memory_bytes_allocatable=2**45, memory_bytes_free=2**45,
                           node_cpu_milli_free_max=10**5, node_memory_bytes_free_max=2**42)


def test_a_gang_its_quota_held_short_says_so_in_its_message(tmp_path: Path) -> None:
    """elasticqa63: Queue small (quota A100 12), 4 x 4 A100 with minimum 1, placed 3/4 with the same message as a
    gang held short by room; the user could not tell why 3."""
    config = SchedulerConfig(queues={"default": QueueConfig(quota=Quota(accelerator_milli={H100: 24_000}))})
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), scheduler=Scheduler(config), clock=lambda: 1000.0)
    fed.report(fed.connect(cluster="b", region="r", labels={}), _capacity(8))
    job = fed.submit(replace(job_spec("ft", replicas=4, gpus=8, models=(H100,)), min_replicas=1))
    fed.schedule_once()
    assert [(p.cluster, p.replicas) for p in job.placements] == [("b", 3)]
    said = shortfall(job)  # what `federator get jobs` REASON and the FederatedJob's status say
    assert said.startswith("elastic: 3/4 replicas placed (spec.minReplicas 1); it runs at 3 until it ends; its "
                           "queue's quota, not room, held it to 3 (room fits 4; at 4: quota of queue default"), said
    assert said in job.message, job.message
