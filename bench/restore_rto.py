"""A federator's host lost and restored from its last backup: the RPO and RTO operators.md's "Disaster recovery"
states, measured with real processes.

    python bench/restore_rto.py --jobs 20 --lost 10

Starts `federator serve` and two simulated agents (examples/fleet.yaml) on loopback, submits `--jobs` long jobs,
takes a `federator backup`, submits `--lost` more, then SIGKILLs the federator, deletes its store (and -wal, -shm),
puts the backup in its place and starts it again on the same address. Prints: the jobs the restored store holds
(the RPO: those accepted after the backup are gone), the time from the new process's start to its ready file, and
to `every expected member cluster has reported: placing` in its log (the RTO the product owns: the operator's own
time to notice and to fetch the copy comes on top), the orphans the members report (the lost jobs' running work),
and how many of the restored jobs' placements the agents launched again (0: adopted).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from federator.cli.backup import backup as take_backup
from federator.cli.get import list_clusters, list_jobs
from federator.cli.submit_calls import submit_specs
from federator.jobfile import parse_job
from federator.local import LocalFederation
from federator.model import JobPhase, JobSpec

ROOT = Path(__file__).resolve().parents[1]
PLACING = "every expected member cluster has reported: placing"


def spec(name: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-duration": "900s"}},
                      "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "memory": "1Gi"}}})


def wait(what: str, fn: Callable[[], object], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.2)


def running(fed: LocalFederation, n: int) -> bool:
    return sum(j.phase is JobPhase.RUNNING for j in list_jobs(fed.client)) >= n


def orphans(fed: LocalFederation) -> float:
    body = urllib.request.urlopen(fed.metrics_url, timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith("federator_orphan_placements{"))


def logged_at(log: Path, needle: str, after: int) -> float | None:
    """The wall-clock time of the first log line after byte `after` holding `needle` (the log's own stamp)."""
    for line in log.read_text()[after:].splitlines():
        if needle in line:
            stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20, help="jobs accepted before the backup (default %(default)s)")
    ap.add_argument("--lost", type=int, default=10, help="jobs accepted after it (default %(default)s)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="restore-rto-") as tmp:
        fed = LocalFederation(workdir=Path(tmp) / "fed", fleet=ROOT / "examples" / "fleet.yaml", tls=False,
                              serve_args=["--report-interval", "0.5", "--cycle-interval", "0.2"])
        try:
            fed.start_server()
            for cluster in ("east-1", "west-1"):
                fed.start_agent(cluster)
            wait("both agents", lambda: sum(c["state"] == "Ready" for c in list_clusters(fed.client)) == 2)
            submit_specs(fed.client, [spec(f"kept-{i}") for i in range(args.jobs)])
            wait("the kept jobs to run", lambda: running(fed, args.jobs))
            db, backup = fed.workdir / "federator.db", fed.workdir / "backup.db"
            take_backup(db, backup)
            submit_specs(fed.client, [spec(f"lost-{i}") for i in range(args.lost)])
            wait("every job to run", lambda: running(fed, args.jobs + args.lost))
            launched_before = sum(p.read_text().count("launched placement kept-")
                                  for p in fed.workdir.glob("agent-*.log"))

            assert fed.server is not None
            fed.server.stop(signal.SIGKILL)
            for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                leftover.unlink(missing_ok=True)
            shutil.copy(backup, db)
            log = fed.workdir / "federator.log"
            offset = len(log.read_text())
            started = time.time()
            fed.start_server()
            ready = time.time() - started
            wait("placing", lambda: logged_at(log, PLACING, offset) is not None)
            placing = (logged_at(log, PLACING, offset) or started) - started
            held = len(list_jobs(fed.client))
            wait("the orphans to be counted", lambda: orphans(fed) >= args.lost, timeout=30)
            launched_after = sum(p.read_text().count("launched placement kept-")
                                 for p in fed.workdir.glob("agent-*.log"))
            print(f"restored store: {held} of {args.jobs + args.lost} jobs (the {args.lost} accepted after the "
                  "backup are gone)")
            print(f"start to ready file: {ready:.2f} s; start to '{PLACING}': {placing:.2f} s")
            print(f"orphans reported: {orphans(fed):g}; restored jobs launched again: "
                  f"{launched_after - launched_before}")
        finally:
            fed.stop()


if __name__ == "__main__":
    main()
