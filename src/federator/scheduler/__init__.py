"""Pure placement logic: no I/O, no gRPC, no Kubernetes, no Prometheus.

The server, the simulator and the benchmarks hand a Snapshot, the pending
jobs and the running work to Scheduler.schedule and act on the returned
decisions and preemptions.

The package is built compiled (mypyc, `FEDERATOR_COMPILE=1`, see setup.py) for the image:
the same code and decisions, about twice as fast. `COMPILED` says which build is running.
"""

from importlib.machinery import EXTENSION_SUFFIXES

from federator.scheduler import cycle as _cycle
from federator.scheduler.alternatives import Assignment
from federator.scheduler.config import QueueConfig, Quota, SchedulerConfig
from federator.scheduler.cycle import CycleResult, Decision, Scheduler
from federator.scheduler.demand import Arrival
from federator.scheduler.framework import Allocation, CycleContext, PlacementRequest, may_spread, model_matches
from federator.scheduler.policy import PolicyError, load_policy, parse_policy
from federator.scheduler.preemption import Preemption
from federator.scheduler.snapshot import Snapshot, Txn, release, reserve

COMPILED: bool = (_cycle.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))

__all__ = [
    "COMPILED",
    "Allocation",
    "Arrival",
    "Assignment",
    "CycleContext",
    "CycleResult",
    "Decision",
    "PlacementRequest",
    "PolicyError",
    "Preemption",
    "QueueConfig",
    "Quota",
    "Scheduler",
    "SchedulerConfig",
    "Snapshot",
    "Txn",
    "may_spread",
    "model_matches",
    "load_policy",
    "parse_policy",
    "release",
    "reserve",
]
