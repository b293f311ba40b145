"""Pure placement logic: no I/O, no gRPC, no Kubernetes, no Prometheus.

The server, the simulator and the benchmarks hand a Snapshot and the pending
jobs to Scheduler.schedule and act on the returned decisions.
"""

from federator.scheduler.cycle import Assignment, CycleResult, Decision, Scheduler, SchedulerConfig
from federator.scheduler.framework import CycleContext, PlacementRequest, gpu_model_matches
from federator.scheduler.snapshot import Snapshot, Txn, reserve

__all__ = [
    "Assignment",
    "CycleContext",
    "CycleResult",
    "Decision",
    "PlacementRequest",
    "Scheduler",
    "SchedulerConfig",
    "Snapshot",
    "Txn",
    "gpu_model_matches",
    "reserve",
]
