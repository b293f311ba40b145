"""`federator sim`: run the real scheduler over a fleet and a workload in simulated time.

    federator sim --fleet ../shared/data/alibaba-spot-gpu-fleet-2026.csv --clusters 8 \\
        --workload examples/workloads/pods-sample.csv --mode fill -o json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from federator.paths import output_problem

Clock = Callable[[], float]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sim", help="simulate the scheduler over a fleet and a workload (YAML or trace CSVs)")
    p.add_argument("--fleet", type=Path, required=True,
                   help="fleet YAML; today's fleet as `federator get clusters -o yaml|json` wrote it (node "
                        "shapes approximated: docs/operators.md); or node CSV (sn,cpu_milli,memory_mib,gpu,model or "
                        "node_name,gpu_model,gpu_capacity_num,cpu_num, with optional cluster,region). A blank is "
                        "read only as: sn/node_name node-N, gpu/gpu_capacity_num 0 on a row naming no model, "
                        "cluster dealt (not beside a region), region the cluster's; every other blank, a count "
                        "that is not whole or a short row is refused")
    p.add_argument("--workload", type=Path, required=True,
                   help="job YAML (a file, or a folder of them as for submit -f; a `federator get jobs -o "
                        "yaml|json` list replays its recorded submit and run times unless the sim-arrival / "
                        "sim-duration annotations say otherwise), or pod CSV (name,cpu_milli,memory_mib,num_gpu,"
                        "gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time; gpu_spec: "
                        "models of any vendor the fleet or the catalog knows, or a vendor, '|' between; a blank is "
                        "read only as: name pod-N, gpu_milli whole GPUs, gpu_spec any accelerator, qos not "
                        "preemptible, creation_time the row's place, scheduled_time creation_time, deletion_time "
                        "runs to the end)")
    p.add_argument("--clusters", type=int, help="deal a node CSV without a cluster column into N clusters "
                                                "in N regions (default 4)")
    p.add_argument("--mode", choices=["fill", "replay"], default="fill",
                   help="fill: offer every job once in arrival order, no departures, no clock (the report's "
                        "figures are the end state); replay: arrivals and departures in time order (its figures "
                        "are time averages over the run, with the jobs' waits) (default %(default)s)")
    p.add_argument("--policy", type=Path, metavar="FILE",
                   help="scheduling policy YAML (as for serve); a job Submit would refuse under it (spec.priority "
                        "above its queue's maxPriority) is not offered, and counted in jobs_refused_at_submit")
    p.add_argument("--accelerator-catalog", type=Path, metavar="FILE",
                   help="accelerator catalog YAML merged over the built-in one (as for serve and agent): the "
                        "fleet's vendors and models and the jobs' resource names; a file with errors is refused "
                        "naming the line")
    p.add_argument("--fit", choices=["fgd", "best", "first", "random"], default="fgd",
                   help="how simulated clusters pick a node for a replica: fgd = least growth of "
                        "expected fragmentation under recent requests (default %(default)s)")
    p.add_argument("--batch", type=int, default=1000, help="fill mode: jobs offered per cycle (default %(default)s)")
    p.add_argument("--cycle-interval", type=float, default=10.0,
                   help="replay mode: simulated seconds between cycles (default %(default)s)")
    p.add_argument("--from", dest="start", type=float, metavar="SECONDS",
                   help="offer only the jobs arriving at or after SECONDS of the workload's clock (each runs to "
                        "its end; work that arrived before is not running): one stretch of a long replay")
    p.add_argument("--until", type=float, metavar="SECONDS",
                   help="offer only the jobs arriving before SECONDS of the workload's clock (with --from: a "
                        "window [from, until))")
    p.add_argument("--seed", type=int, default=0, help="seed for random-fit nodes (default %(default)s)")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text",
                   help="the report (every key is in docs/operators.md, 'Reading the sim report'); json also "
                        "has the timelines series and queue_series")
    p.add_argument("--jobs-out", type=Path, metavar="FILE",
                   help="write one line per job: where it ran, its arrival, start, end and wait (replay), and "
                        "why it was never placed (code and words); CSV for .csv, JSON lines for .jsonl/.json")
    p.add_argument("--plot", type=Path, metavar="FILE", help="write a PNG of accelerator allocation over time "
                                                             "(needs matplotlib: pip install 'federator[plot]')")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show a progress bar on stderr, with jobs started (replay) and the time left "
                          "(default: when stderr is a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_sim)


def _sim(args: argparse.Namespace) -> int:
    from federator.backends.sim.pool_names import unknown_models
    from federator.catalog import CatalogError, use_catalog_file
    from federator.catalog.model_names import quota_model_problem
    from federator.cli.problem_lines import problem_lines
    from federator.scheduler import PolicyError, Scheduler, load_policy
    from federator.simulate import Simulation, TraceError, load_fleet_file, load_workload
    from federator.simulate.outcomes import JOBS_SUFFIXES, jobs_format, write_jobs
    from federator.simulate.time_window import in_window, window_problem

    problem = output_problem("--plot", args.plot) or output_problem("--jobs-out", args.jobs_out)
    if problem is None and args.jobs_out is not None and jobs_format(args.jobs_out) is None:
        problem = f"--jobs-out: {args.jobs_out}: must end in {', '.join(JOBS_SUFFIXES)} (CSV or JSON lines)"
    if problem:
        print(f"federator sim: {problem}", file=sys.stderr)
        return 2
    if args.batch < 1:
        print(f"federator sim: --batch: must be at least 1, got {args.batch}", file=sys.stderr)
        return 2
    if not (math.isfinite(args.cycle_interval) and args.cycle_interval > 0):
        print(f"federator sim: --cycle-interval: must be a positive number of seconds, got {args.cycle_interval:g}",
              file=sys.stderr)
        return 2
    problem = window_problem(args.start, args.until)
    if problem:
        print(f"federator sim: {problem}", file=sys.stderr)
        return 2
    try:  # first: the fleet and the workload are read with it
        use_catalog_file(args.accelerator_catalog)
    except CatalogError as exc:
        print(f"federator sim: --accelerator-catalog: {exc}", file=sys.stderr)
        return 2
    try:
        config = load_policy(args.policy, models=quota_model_problem) if args.policy else None
        fleet = load_fleet_file(args.fleet, clusters=args.clusters)
        jobs = load_workload(args.workload, fleet=fleet,
                             note=lambda said: print(f"federator sim: {said}", file=sys.stderr))
        jobs = in_window(jobs, args.start, args.until)
        sim = Simulation(fleet, jobs, scheduler=Scheduler(config), fit=args.fit, seed=args.seed,
                         batch=args.batch, cycle_interval=args.cycle_interval)
    except (PolicyError, TraceError, ValueError) as exc:
        first, *more = problem_lines(exc)  # a workload of 262 bad documents: the first few and the count
        print(f"federator sim: {first}", *more, sep="\n", file=sys.stderr)
        return 2
    for warning in unknown_models(fleet.values()):  # a typo'd model: said, not refused (backends/sim/pool_names.py)
        print(f"federator sim: warning: {warning}", file=sys.stderr)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar(sys.stderr, "jobs" if args.mode == "fill" else "s") if show else None
    total = len(sim.jobs)

    def replayed(done: int, end: int) -> None:  # how far in simulated time, and in jobs started
        assert bar is not None
        bar.update(done, end, note=f"{sim.started:,}/{total:,} jobs started")

    report = sim.run(args.mode, progress=(bar.update if args.mode == "fill" else replayed) if bar else None)
    if bar:
        bar.close()
    if args.plot:
        try:
            plot(report.series, args.plot, mode=args.mode)
        except ImportError:
            print("federator sim: --plot needs matplotlib (pip install 'federator[plot]')", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"federator sim: --plot: cannot write {args.plot}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    if args.jobs_out:
        try:
            write_jobs(args.jobs_out, report.jobs)
        except OSError as exc:
            print(f"federator sim: --jobs-out: cannot write {args.jobs_out}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    if args.output == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_text(report.to_json(), report.scarcity_scale)
    return 0


def print_text(d: dict[str, object], scarcity_scale: float) -> None:
    """The report a line a key; a table (per region, model, queue) a line a row; the timelines only in JSON."""
    d = {k: v for k, v in d.items() if k not in ("series", "queue_series")}
    d["scarcity_scale"] = "median" if not scarcity_scale else f"K={scarcity_scale:g}"
    width = max(len(k) for k in d)
    for k, v in d.items():
        if k in ("refused_at_submit_reasons", "pending_examples") and v:  # words, one a line
            for said, n in v.items():  # type: ignore[attr-defined]
                line = f"{n} x {said}" if k == "refused_at_submit_reasons" else f"{said}: {n}"
                print(f"{k:<{width}}  {line}")
            continue
        if isinstance(v, Mapping) and v and all(isinstance(x, Mapping) for x in v.values()):
            for row, cells in _rows(v):
                print(f"{k:<{width}}  {row}: {cells}")
            continue
        print(f"{k:<{width}}  {v:.6g}" if isinstance(v, float) else f"{k:<{width}}  {v}")


def _rows(table: Mapping[str, object], prefix: str = "") -> list[tuple[str, str]]:
    """(row name, "key value ...") of a table of mappings; a mapping of tables (wait_seconds' by_queue) nests."""
    out: list[tuple[str, str]] = []
    for name, cells in table.items():
        assert isinstance(cells, Mapping)
        if cells and all(isinstance(x, Mapping) for x in cells.values()):
            out.extend(_rows(cells, f"{prefix}{name} "))
        else:
            out.append((f"{prefix}{name}", " ".join(f"{c} {x:.6g}" if isinstance(x, float) else f"{c} {x}"
                                                    for c, x in cells.items())))
    return out


class ProgressBar:
    """A one-line progress bar on a terminal stream, redrawn at every 1% or every 2 wall seconds, with what the
    caller adds (a replay: jobs started of all) and the wall time left at the rate so far (outside planners' QA,
    P13: a replay's simulated seconds alone said nothing of how long the run would take)."""

    def __init__(self, out: TextIO, unit: str, width: int = 40, clock: Clock = time.monotonic) -> None:
        self.out, self.unit, self.width, self.clock = out, unit, width, clock
        self._last = -1
        self._started = clock()
        self._drawn = self._started
        self._clear = "\033[K" if out.isatty() else ""  # a shorter line leaves no tail of the last

    def update(self, done: int, total: int, note: str = "") -> None:
        pct = 100 * done // total if total else 100
        now = self.clock()
        if pct == self._last and now - self._drawn < 2.0:
            return
        self._last, self._drawn = pct, now
        filled = self.width * pct // 100
        extra = f", {note}" if note else ""
        self.out.write(f"\r[{'#' * filled}{' ' * (self.width - filled)}] {pct:3d}% {done:,}/{total:,} {self.unit}"
                       f"{extra}, {eta(now - self._started, done, total)}{self._clear}")
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()


def eta(elapsed: float, done: int, total: int) -> str:
    """The wall time left at the rate so far: "ETA 12m 05s"; "ETA ?" before any progress; at the bar's end the
    time taken ("1m 02s elapsed": a replay's backlog may still run past the last departure the workload has)."""
    if done >= total:
        return f"{_span(elapsed)} elapsed"
    if done <= 0 or elapsed <= 0:
        return "ETA ?"
    return f"ETA {_span(elapsed * (total - done) / done)}"


def _span(seconds: float) -> str:
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def plot(series: tuple[tuple[float, float], ...], path: Path, *, mode: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    xs = [x if mode == "fill" else x / 3600 for x, _ in series]
    ax.plot(xs, [100 * r for _, r in series], drawstyle="steps-post")
    ax.set_xlabel("jobs offered" if mode == "fill" else "simulated hours")
    ax.set_ylabel("accelerators allocated (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"federator sim ({mode}): accelerator allocation")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
