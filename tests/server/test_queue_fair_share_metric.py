"""Each queue's weight and weighted fair share in accelerators are exported (tenant QA F4): an SRE can tell a
starving organisation (holding less than its share with work pending) from a hogging one."""

from __future__ import annotations

from pathlib import Path

from federator.metrics import Metrics
from federator.scheduler import QueueConfig, Scheduler, SchedulerConfig
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, job, pool

H100 = "NVIDIA-H100-80GB-HBM3"


def test_weights_and_fair_shares_follow_the_policy_and_the_queues_with_work(tmp_path: Path) -> None:
    metrics = Metrics()
    config = SchedulerConfig(queues={"org-a": QueueConfig(weight=3.0), "org-b": QueueConfig(weight=1.0),
                                     "org-idle": QueueConfig(weight=4.0)})
    fed = Federator(store=SqliteJobStore(tmp_path / "federator.db"), metrics=metrics, scheduler=Scheduler(config))
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool(H100, nodes=2)).capacity)  # 16 accelerators
    fed.submit(job("a", gpus=8, models=(H100,), queue="org-a"))
    fed.submit(job("b", gpus=8, models=(H100,), queue="org-b"))
    fed.schedule_once()
    reg = metrics.registry
    assert reg.get_sample_value("federator_queue_weight", {"queue": "org-a"}) == 3.0
    assert reg.get_sample_value("federator_queue_fair_share", {"queue": "org-a"}) == 12.0  # 3 / (3 + 1) of 16
    assert reg.get_sample_value("federator_queue_fair_share", {"queue": "org-b"}) == 4.0
    # a queue with no work: what it would get were it to ask now, 4 / (3 + 1 + 4) of 16
    assert reg.get_sample_value("federator_queue_fair_share", {"queue": "org-idle"}) == 8.0
