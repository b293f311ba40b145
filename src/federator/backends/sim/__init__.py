"""Simulated member clusters: nodes with accelerators, jobs that run for a duration.

The embedded default backend: it powers `make demo`, `federator sim` and the
benchmarks. It is a product backend, not a test double.
"""

from federator.backends.sim.fleet import ClusterSpec, FleetError, NodeSpec, load_fleet
from federator.backends.sim.nodes import NodeSet

__all__ = ["ClusterSpec", "FleetError", "NodeSet", "NodeSpec", "load_fleet"]
