"""Read fleets and workloads for the simulator: project YAML, and the Alibaba GPU trace CSVs.

Fleets:
  - the project's fleet YAML (backends/sim/fleet.py);
  - node CSVs `sn,cpu_milli,memory_mib,gpu,model` (Alibaba openb node list) or
    `node_name,gpu_model,gpu_capacity_num,cpu_num` (the 2026 spot GPU fleet; memory
    is not given and is taken as MEMORY_PER_CPU per vCPU). Columns may come in any
    order. With `cluster` (and `region`) columns nodes go where they say; without,
    they are dealt round-robin into N clusters in N regions.

Workloads:
  - the project's job YAML (`federator.io/sim-arrival` and `federator.io/sim-duration`
    annotations give arrival time and run time);
  - pod CSVs `name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,
    creation_time,deletion_time,scheduled_time`: one pod is a one-replica job;
    `gpu_spec` like `V100M16|V100M32` is a GPU-model constraint, `gpu_milli` < 1000
    a fractional GPU; qos `BE` (best effort) marks the job preemptible.

Every problem names the file, the row and the column.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from federator.backends.sim.fleet import ClusterSpec, FleetError, NodeSpec, load_fleet
from federator.backends.sim.runtime import ARRIVAL_ANNOTATION, DURATION_ANNOTATION, parse_duration
from federator.jobfile import JOB_FILE_SUFFIXES, JobFileError, job_paths, load_job_files
from federator.model import MILLI, JobKind, JobSpec, Resources

MIB = 2**20
GIB = 2**30
MEMORY_PER_CPU = 8 * GIB  # for fleet CSVs without a memory column
OPENB_NODES = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
SPOT_NODES = ("node_name", "gpu_model", "gpu_capacity_num", "cpu_num")
POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos", "pod_phase",
               "creation_time", "deletion_time", "scheduled_time")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class TraceError(ValueError):
    """A fleet or workload file that cannot be used; names the file, row and column."""


@dataclass(frozen=True, slots=True)
class SimJob:
    """A job of a workload: what to submit, when it arrives, and how long it runs once placed."""

    spec: JobSpec
    arrival: float
    duration: float | None  # None: runs past the end of the simulation


def load_fleet_file(path: Path, *, clusters: int | None = None) -> dict[str, ClusterSpec]:
    """Clusters from a fleet YAML or a node CSV (dealt into `clusters` clusters when it has no cluster column)."""
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        if clusters is not None:
            raise TraceError(f"--clusters: applies to node CSVs only; {path} says which clusters exist")
        try:
            return load_fleet(path)
        except FleetError as exc:
            raise TraceError(str(exc)) from exc
    rows, header = _read_csv(path)
    if set(OPENB_NODES) <= set(header):
        layout = "openb"
    elif set(SPOT_NODES) <= set(header):
        layout = "spot"
    else:
        raise TraceError(f"{path}: header: expected columns {','.join(OPENB_NODES)} or {','.join(SPOT_NODES)}, "
                         f"got {','.join(header)}")
    n = clusters if clusters is not None else 4
    if n < 1:
        raise TraceError("--clusters: must be at least 1")
    nodes: dict[tuple[str, str], list[NodeSpec]] = {}
    for i, row in enumerate(rows):
        where = f"{path}:{i + 2}"
        if layout == "openb":
            name = row["sn"] or f"node-{i}"
            gpus = _int(row, "gpu", where)
            model = row["model"].strip() if gpus else ""
            cpu = _int(row, "cpu_milli", where)
            memory = _int(row, "memory_mib", where) * MIB
        else:
            name = row["node_name"] or f"node-{i}"
            gpus = _int(row, "gpu_capacity_num", where)
            model = row["gpu_model"].strip() if gpus else ""
            cpu = int(float(row["cpu_num"] or 0) * MILLI) if _is_number(row["cpu_num"]) else -1
            if cpu < 0:
                raise TraceError(f"{where}: column cpu_num: must be a non-negative number, got {row['cpu_num']!r}")
            memory = cpu // MILLI * MEMORY_PER_CPU
        if gpus and not _MODEL.match(model):
            raise TraceError(f"{where}: column {'model' if layout == 'openb' else 'gpu_model'}: "
                             f"a node with GPUs needs a GPU model name, got {model!r}")
        if row.get("cluster"):
            key = (row["cluster"], row.get("region") or row["cluster"])
        else:
            k = i % n
            key = (f"cluster-{k:03d}", f"region-{k:03d}")
        nodes.setdefault(key, []).append(NodeSpec(f"{key[0]}-{name}", model, gpus, cpu, memory))
    return {c: ClusterSpec(c, r, (), tuple(ns)) for (c, r), ns in sorted(nodes.items())}


def load_workload(path: Path) -> list[SimJob]:
    """Jobs in arrival order from a job YAML (a file, or a folder of them as `federator submit -f` takes), or a
    pod CSV."""
    if path.is_dir() or path.suffix.lower() in JOB_FILE_SUFFIXES:
        try:
            specs = [s for f in job_paths([path]) for s in load_job_files(f)]
        except JobFileError as exc:
            raise TraceError(str(exc)) from exc
        jobs = []
        for i, s in enumerate(specs):
            arrival = parse_duration(s.annotation(ARRIVAL_ANNOTATION), float(i))
            duration = parse_duration(s.annotation(DURATION_ANNOTATION), -1.0)
            jobs.append(SimJob(s, arrival, duration if duration >= 0 else None))
        return _unique(sorted(jobs, key=lambda j: j.arrival))
    rows, header = _read_csv(path)
    missing = [c for c in POD_COLUMNS if c not in header]
    if missing:
        raise TraceError(f"{path}: header: missing pod columns {','.join(missing)}")
    jobs = [_pod(row, f"{path}:{i + 2}", i) for i, row in enumerate(rows)]
    return _unique(sorted(jobs, key=lambda j: j.arrival))


def _pod(row: Mapping[str, str], where: str, index: int) -> SimJob:
    num_gpu = _int(row, "num_gpu", where)
    gpu_milli = _int(row, "gpu_milli", where) if num_gpu else 0
    if num_gpu > 1 and gpu_milli not in (0, MILLI):
        raise TraceError(f"{where}: column gpu_milli: a pod with {num_gpu} GPUs takes them whole, got {gpu_milli}")
    if num_gpu == 1 and not 0 < gpu_milli <= MILLI:
        raise TraceError(f"{where}: column gpu_milli: must be 1..1000 for a one-GPU pod, got {gpu_milli}")
    per_replica = num_gpu * MILLI if num_gpu > 1 else gpu_milli
    spec_text = (row.get("gpu_spec") or "").strip()
    models = tuple(m for m in spec_text.split("|") if m) if per_replica else ()
    for m in models:
        if not _MODEL.match(m):
            raise TraceError(f"{where}: column gpu_spec: {m!r} is not a GPU model name")
    created = _float(row, "creation_time", where, default=float(index))
    scheduled = _float(row, "scheduled_time", where, default=created)
    deleted = _float(row, "deletion_time", where, default=-1.0)
    duration = max(0.0, deleted - scheduled) if deleted >= 0 else None
    cpu = _int(row, "cpu_milli", where)
    memory = _int(row, "memory_mib", where) * MIB
    if not (cpu or memory or per_replica):
        raise TraceError(f"{where}: pod asks for nothing (cpu_milli, memory_mib and num_gpu are all 0)")
    name = re.sub(r"[^a-z0-9.-]+", "-", (row.get("name") or f"pod-{index}").lower()).strip("-.") or f"pod-{index}"
    kind = JobKind.INFERENCE if per_replica and per_replica < MILLI else JobKind.TRAINING
    spec = JobSpec(name=name, kind=kind, replicas=1, resources=Resources(cpu, memory, per_replica),
                   accelerator_models=models, preemptible=(row.get("qos") or "").strip().upper() == "BE")
    return SimJob(spec, created, duration)


def _unique(jobs: Sequence[SimJob]) -> list[SimJob]:
    seen: set[str] = set()
    out = []
    for j in jobs:
        name = j.spec.name
        k = 1
        while name in seen:
            k += 1
            name = f"{j.spec.name}-{k}"
        seen.add(name)
        out.append(j if name == j.spec.name else SimJob(_renamed(j.spec, name), j.arrival, j.duration))
    return out


def _renamed(spec: JobSpec, name: str) -> JobSpec:
    from dataclasses import replace

    return replace(spec, name=name)


def _read_csv(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = [{k: (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: is not UTF-8 text") from exc
    if not header:
        raise TraceError(f"{path}: header: the file is empty")
    return rows, header


def _is_number(text: str) -> bool:
    try:
        return float(text or 0) >= 0
    except ValueError:
        return False


def _int(row: Mapping[str, str], column: str, where: str) -> int:
    raw = row.get(column) or "0"
    try:
        value = int(float(raw))
    except ValueError:
        raise TraceError(f"{where}: column {column}: must be a whole number, got {raw!r}") from None
    if value < 0:
        raise TraceError(f"{where}: column {column}: must not be negative, got {raw!r}")
    return value


def _float(row: Mapping[str, str], column: str, where: str, *, default: float) -> float:
    raw = row.get(column) or ""
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise TraceError(f"{where}: column {column}: must be a number of seconds, got {raw!r}") from None
