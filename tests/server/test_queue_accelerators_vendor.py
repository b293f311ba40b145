"""federator_queue_accelerators by vendor: what a queue holds, by the vendor of the pools its placements hold, so
the dashboard's `vendor` variable filters a queue's share as it filters the fleet (vendqa61 V9's rest: the queue
gauge had a queue label alone). A queue holding nothing has one series of vendor `none`, 0; a sum by queue is what
the gauge said before."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry
from server_support import Clock, MemoryStore, make, spec

from federator.jobfile import parse_job
from federator.metrics import StateCollector

from builders import cluster, pool


def test_a_queues_holding_is_labelled_by_the_vendor_of_its_pools() -> None:
    fed = make(MemoryStore(), Clock())
    ascend = replace(pool("Ascend910B3", nodes=2, free=8), vendor="huawei", resource_name="huawei.com/Ascend910",
                     family="Ascend910B")
    for name, member in (("east-1", cluster("east-1", "east", pool("NVIDIA-H100-80GB-HBM3", nodes=2, free=8))),
                         ("cn-1", cluster("cn-1", "cn", ascend))):
        fed.report(fed.connect(cluster=name, region=member.region, labels={}), member.capacity)
    fed.submit(spec("gpus", gpus=8, replicas=1))
    fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "npus"},
                          "spec": {"kind": "training", "replicas": 1, "acceleratorModels": ["Ascend910B3"],
                                   "resources": {"cpu": "1", "huawei.com/Ascend910": 4}}}))
    fed.submit(replace(spec("idle", gpus=8, replicas=9), queue="research"))  # 72: never fits, holds nothing
    fed.schedule_once()
    registry = CollectorRegistry()
    registry.register(StateCollector(fed.sample))
    held = {(s.labels["queue"], s.labels["vendor"]): s.value for f in registry.collect() for s in f.samples
            if s.name == "federator_queue_accelerators"}
    assert held == {("default", "nvidia"): 8.0, ("default", "huawei"): 4.0, ("research", "none"): 0.0}
