"""The trace simulator: the real scheduler against simulated clusters, in simulated time.

`federator sim` and the benchmarks drive it; it reads project YAML and the
Alibaba accelerator trace CSV layouts (fleets and pods); `synth` writes synthetic pod CSVs.
"""

from federator.simulate.engine import MODES, SimReport, Simulation
from federator.simulate.traces import SimJob, TraceError, load_fleet_file, load_workload

__all__ = [
    "MODES",
    "SimJob",
    "SimReport",
    "Simulation",
    "TraceError",
    "load_fleet_file",
    "load_workload",
]
