"""Read fleets and workloads for the simulator: project YAML, and the Alibaba GPU trace CSVs.

Fleets:
  - the project's fleet YAML (backends/sim/fleet.py);
  - node CSVs `sn,cpu_milli,memory_mib,gpu,model` (Alibaba openb node list) or
    `node_name,gpu_model,gpu_capacity_num,cpu_num` (the 2026 spot GPU fleet; memory
    is not given and is taken as MEMORY_PER_CPU per vCPU). Columns may come in any
    order. With `cluster` (and `region`) columns nodes go where they say; without,
    they are dealt round-robin into N clusters in N regions;
  - the live federator's view, `federator get clusters -o yaml|json` (simulate/live_fleet.py).

Workloads:
  - the project's job YAML, and the job lists `federator get jobs -o yaml|json` writes: the
    `federator.io/sim-arrival` and `federator.io/sim-duration` annotations give arrival time and
    run time, else the recorded status times (simulate/job_records.py);
  - pod CSVs `name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,
    creation_time,deletion_time,scheduled_time`: one pod is a one-replica job;
    `gpu_spec` like `V100M16|V100M32` is a model constraint (models of any vendor the fleet
    or the catalog knows: simulate/pod_asks.py), `gpu_milli` < 1000 a fractional GPU; qos `BE`
    (best effort) marks the job preemptible.

Every problem names the file, the row and the column. A blank value is read only where the layout has a
default for it (`federator sim --help`; the table in docs/operators.md): a count left blank, a value that is
not a whole number (8.9 devices), a row short of a field or a pod deleted before it was created or scheduled
are refused, never read as something else (outside QA, planners P12).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from federator.backends.sim.fleet import ClusterSpec, FleetError, NodeSpec, parse_fleet
from federator.jobfile import JobFileError
from federator.jobfile_loading import JOB_FILE_SUFFIXES
from federator.model import MILLI, JobKind, JobSpec, Resources
from federator.model.accelerator import AcceleratorAlternative
from federator.simulate.job_records import RecordError, load_job_records
from federator.simulate.pod_asks import AskError, FleetModels
from federator.simulate.sim_job import SimJob
from federator.yamltext import YamlFileError, load_yaml_file

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


def load_fleet_file(path: Path, *, clusters: int | None = None) -> dict[str, ClusterSpec]:
    """Clusters from a fleet YAML or a node CSV (dealt into `clusters` clusters when it has no cluster column)."""
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        if clusters is not None:
            raise TraceError(f"--clusters: applies to node CSVs only; {path} says which clusters exist")
        from federator.simulate.live_fleet import LiveFleetError, fleet_of_cluster_list, is_cluster_list

        try:
            doc = load_yaml_file(path)
            if is_cluster_list(doc):  # `federator get clusters -o yaml|json`: today's fleet
                return fleet_of_cluster_list(doc, source=str(path))
            return parse_fleet(doc, source=str(path))
        except YamlFileError as exc:
            raise TraceError(f"{path}: {exc}") from exc
        except (FleetError, LiveFleetError) as exc:
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
    nodes: dict[str, list[NodeSpec]] = {}
    regions: dict[str, tuple[str, str]] = {}  # cluster -> (region, the row that said it first)
    for i, (line, row) in enumerate(rows):
        where = f"{path}:{line}"
        if layout == "openb":
            name = row["sn"] or f"node-{i}"
            gpus = _int(row, "gpu", where, blank=None if row["model"] else 0)
            model = row["model"].strip() if gpus else ""
            cpu = _int(row, "cpu_milli", where)
            memory = _int(row, "memory_mib", where) * MIB
        else:
            name = row["node_name"] or f"node-{i}"
            gpus = _int(row, "gpu_capacity_num", where, blank=None if row["gpu_model"] else 0)
            model = row["gpu_model"].strip() if gpus else ""
            cpu = round(_number(row, "cpu_num", where, what="a non-negative number of vCPUs") * MILLI)
            memory = cpu // MILLI * MEMORY_PER_CPU
        if gpus and not _MODEL.match(model):
            raise TraceError(f"{where}: column {'model' if layout == 'openb' else 'gpu_model'}: "
                             f"a node with GPUs needs a GPU model name, got {model!r}")
        cluster, region = row.get("cluster", ""), row.get("region", "")
        if not cluster:
            if region:  # dealt into cluster-NNN in region-NNN, the region said would be lost
                raise TraceError(f"{where}: column cluster: is blank, but the row names the region {region}: say "
                                 "which cluster the node is in (a blank cluster is dealt round-robin, in a region of "
                                 "its own)")
            k = i % n
            cluster, region = f"cluster-{k:03d}", f"region-{k:03d}"
        if region:
            said = regions.setdefault(cluster, (region, f"line {line}"))
            if said[0] != region:  # one cluster, one region: the later rows' nodes would be lost
                raise TraceError(f"{where}: column region: cluster {cluster} is in region {said[0]} ({said[1]}), "
                                 f"this row says {region}")
        nodes.setdefault(cluster, []).append(NodeSpec(f"{cluster}-{name}", model, gpus, cpu, memory))
    return {c: ClusterSpec(c, regions.get(c, (c, ""))[0], (), tuple(ns)) for c, ns in sorted(nodes.items())}


def load_workload(path: Path, *, fleet: Mapping[str, ClusterSpec] | None = None,
                  note: Callable[[str], None] | None = None) -> list[SimJob]:
    """Jobs in arrival order from a job YAML (a file, or a folder of them as `federator submit -f` takes; a job
    list `federator get jobs` wrote, with its recorded times), or a pod CSV.

    `fleet`: what a pod CSV's `gpu_spec` names is looked up in (pod_asks.py); without one, every pod is an ask of
    the one-count form (NVIDIA), as before 0.14.0. `note`: told what was read but not replayed (a recorded job
    that ended without running)."""
    if path.is_dir() or path.suffix.lower() in JOB_FILE_SUFFIXES:
        try:
            jobs = load_job_records(path, note=note)
        except (JobFileError, RecordError) as exc:
            raise TraceError(str(exc)) from exc
        return _unique(sorted(jobs, key=lambda j: j.arrival))
    rows, header = _read_csv(path)
    missing = [c for c in POD_COLUMNS if c not in header]
    if missing:
        raise TraceError(f"{path}: header: missing pod columns {','.join(missing)}")
    asks = FleetModels.of(fleet) if fleet is not None else None
    jobs = [_pod(row, f"{path}:{line}", i, asks=asks) for i, (line, row) in enumerate(rows)]
    return _unique(sorted(jobs, key=lambda j: j.arrival))


def _pod(row: Mapping[str, str], where: str, index: int, *, asks: FleetModels | None = None) -> SimJob:
    """One pod row as a one-replica job; `asks`: the fleet whose models `gpu_spec` is read against (None: the
    one-count form, NVIDIA)."""
    num_gpu = _int(row, "num_gpu", where)
    gpu_milli = _int(row, "gpu_milli", where, blank=min(num_gpu, 1) * MILLI) if num_gpu else 0
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
    alternatives: tuple[AcceleratorAlternative, ...] = ()
    if asks is not None and per_replica:
        try:
            models, alternatives = asks.ask(models, per_replica)
        except AskError as exc:
            raise TraceError(f"{where}: column gpu_spec: {exc}") from None
    created = _float(row, "creation_time", where, default=float(index))
    scheduled = _float(row, "scheduled_time", where, default=created)
    deleted = _float(row, "deletion_time", where, default=-1.0) if row.get("deletion_time") else None
    if deleted is not None:
        for column, before in (("creation_time", created), ("scheduled_time", scheduled)):
            if deleted < before:
                raise TraceError(f"{where}: column deletion_time: {row['deletion_time']} is before {column} "
                                 f"{row.get(column) or f'{before:g}'}: a pod is deleted after it is created and "
                                 "scheduled")
    duration = deleted - scheduled if deleted is not None else None
    cpu = _int(row, "cpu_milli", where)
    memory = _int(row, "memory_mib", where) * MIB
    if not (cpu or memory or per_replica):
        raise TraceError(f"{where}: pod asks for nothing (cpu_milli, memory_mib and num_gpu are all 0)")
    name = re.sub(r"[^a-z0-9.-]+", "-", (row.get("name") or f"pod-{index}").lower()).strip("-.") or f"pod-{index}"
    kind = JobKind.INFERENCE if per_replica and per_replica < MILLI else JobKind.TRAINING
    resources = Resources(cpu, memory, 0 if alternatives else per_replica)  # alternatives carry their count
    spec = JobSpec(name=name, kind=kind, replicas=1, resources=resources, accelerator_models=models,
                   accelerators=alternatives, preemptible=(row.get("qos") or "").strip().upper() == "BE")
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


def _read_csv(path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(line, row) of every row, and the header: a row with fewer or more fields than the header is refused
    naming the column it lacks (csv would fill it in blank, and the blank be read as a default)."""
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = []
            for r in reader:
                where = f"{path}:{reader.line_num}"
                if None in r:  # DictReader's restkey: fields past the header's
                    raise TraceError(f"{where}: has {len(header) + len(r[None])} fields, the header "  # type: ignore[index]
                                     f"{len(header)}: a value holding a comma must be quoted")
                short = [k for k, v in r.items() if v is None]
                if short:
                    raise TraceError(f"{where}: column {short[0]}: missing: the row has {len(header) - len(short)} "
                                     f"fields, the header {len(header)}")
                rows.append((reader.line_num, {k: v.strip() for k, v in r.items()}))
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: is not UTF-8 text") from exc
    if not header:
        raise TraceError(f"{path}: header: the file is empty")
    return rows, header


def _number(row: Mapping[str, str], column: str, where: str, *, what: str) -> float:
    """A non-negative finite number; a blank is refused (a required column)."""
    raw = row.get(column) or ""
    if not raw:
        raise TraceError(f"{where}: column {column}: is blank: must be {what}")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise TraceError(f"{where}: column {column}: must be {what}, got {raw!r}")
    return value


def _int(row: Mapping[str, str], column: str, where: str, *, blank: int | None = None) -> int:
    """A non-negative whole number (8 or 8.0, never 8.9); a blank is `blank`, or refused when that is None."""
    raw = row.get(column) or ""
    if not raw:
        if blank is not None:
            return blank
        named = row.get("model") or row.get("gpu_model")
        why = f", but the row names the GPU model {named}" if column in ("gpu", "gpu_capacity_num") else ""
        raise TraceError(f"{where}: column {column}: is blank{why}: give a whole number (0 for none)")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not value.is_integer():
        raise TraceError(f"{where}: column {column}: must be a whole number, got {raw!r}")
    if value < 0:
        raise TraceError(f"{where}: column {column}: must not be negative, got {raw!r}")
    return int(value)


def _float(row: Mapping[str, str], column: str, where: str, *, default: float) -> float:
    raw = row.get(column) or ""
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise TraceError(f"{where}: column {column}: must be a number of seconds, got {raw!r}")
    return value
