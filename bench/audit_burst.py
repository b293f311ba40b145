"""A burst of audit lines: what `AuditLog.record` costs the thread that records (the event loop, in `serve`).

    python bench/audit_burst.py --lines 20000

A national federation places thousands of jobs a minute, and a drain or a lost member re-queues hundreds at
once: each placement made or ended is an audit line (server/audit_trail.py), recorded on the event loop. Records
`--lines` `place` lines (the size of a real one) into a file in a temporary directory, synchronously (each line
written and flushed by the caller, as before 0.14.0) and with the writer thread (`background=True`, as `federator
serve` opens it), and prints the caller's time per line and the time until the whole burst is in the file.
`--stall-ms` makes each write of the file wait that long first: a disk or a collector's pipe (`--audit-log -`)
that is slow to take it. Then the audit trail itself (server/audit_trail.py) over `--lines` jobs, as the journal
hands them on the loop: each placed, all re-queued at once (a drain of their cluster), placed again, and ended;
the loop's time per job for each step.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import IO

from federator.model import (
    Job,
    JobId,
    JobKind,
    JobPhase,
    JobSpec,
    Placement,
    PlacementId,
    Reason,
    ReasonCode,
    Resources,
)
from federator.security.audit import AuditLog
from federator.server.audit_trail import AuditTrail


class Stalling:
    """A file whose every write waits `seconds` first."""

    def __init__(self, out: IO[str], seconds: float) -> None:
        self.out, self.seconds = out, seconds

    def write(self, text: str) -> int:
        time.sleep(self.seconds)
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.out.close()


def burst(path: Path, lines: int, *, background: bool, stall: float) -> dict[str, float]:
    audit = AuditLog(path, background=background)
    if stall:
        audit._out = Stalling(audit._out, stall)  # type: ignore[arg-type,assignment]  # noqa: SLF001
    began = time.perf_counter()
    for i in range(lines):
        audit.record("place", identity=None, result="accepted", obj={
            "kind": "Placement", "namespace": f"org-{i % 400:04d}", "name": f"train-{i}",
            "queue": f"org-{i % 400:04d}", "owner": f"user-{i % 5000}", "job_id": f"train-{i}-{i:06x}",
            "placement_id": f"train-{i}-{i:06x}.g1.c-{i % 50}",
            "cluster": f"c-{i % 50}", "region": f"r-{i % 8}", "provider": f"p-{i % 5}", "replicas": 1, "from": []})
    recorded = time.perf_counter() - began
    audit.flush()
    written = time.perf_counter() - began
    audit.close()
    return {"caller_us_per_line": recorded / lines * 1e6, "caller_ms": recorded * 1e3, "in_file_ms": written * 1e3}


def trail(path: Path, n: int) -> dict[str, float]:
    """The loop's microseconds per job of each step of `n` jobs' lives through the audit trail."""
    audit = AuditLog(path, background=True)
    t = AuditTrail(audit, provider_of=lambda name: "acme")
    jobs = [Job(JobId(f"train-{i}"), JobSpec(name=f"train-{i}", kind=JobKind.TRAINING, replicas=1,
                                             queue=f"org-{i % 400:04d}", resources=Resources(8000, 64 << 30, 8000)),
                submitted_at=0.0) for i in range(n)]

    def place(job: Job, generation: int) -> None:
        job.placements = [Placement(PlacementId(f"{job.job_id}.g{generation}.c-{generation}"), job.job_id,
                                    f"c-{generation}", "east", 1, "H100", generation)]
        job.phase = JobPhase.PLACED

    def requeue(job: Job) -> None:
        job.placements, job.phase = [], JobPhase.PENDING
        job.pending_reason = Reason(ReasonCode.DRAINED, "cluster c-1 drained by admin: swap")

    def finish(job: Job) -> None:
        job.placements[0].phase = job.phase = JobPhase.SUCCEEDED

    out: dict[str, float] = {}
    t.observe(jobs)  # submitted
    for step, change in (("place", lambda j: place(j, 1)), ("requeue", requeue), ("place again", lambda j: place(j, 2)),
                         ("finish", finish)):
        for job in jobs:
            change(job)
        began = time.perf_counter()
        for job in jobs:
            t.observe([job])
        out[f"{step}_us_per_job"] = (time.perf_counter() - began) / n * 1e6
    audit.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stall-ms", type=float, default=0.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for background in (False, True):
            runs = [burst(Path(tmp) / f"audit-{background}-{n}.jsonl", args.lines, background=background,
                          stall=args.stall_ms / 1000)
                    for n in range(args.repeat)]
            best = min(runs, key=lambda r: r["caller_ms"])
            print(json.dumps({"writer": "thread" if background else "caller", "lines": args.lines,
                              "stall_ms": args.stall_ms,
                              **{k: round(v, 2) for k, v in best.items()}}))
        steps = trail(Path(tmp) / "trail.jsonl", args.lines)
        print(json.dumps({"trail": args.lines, **{k: round(v, 2) for k, v in steps.items()}}))


if __name__ == "__main__":
    main()
