"""A crowd of Watch streams against a national backlog: what they cost everyone else on the federator.

    python bench/watch_crowd.py --jobs 20000 --streams 1,8,32

Fills a SQLite store with `--jobs` pending jobs (written as Submit writes them, over 200 queues), starts a real
`federator serve --insecure` on it, and for each count of `--streams` opens that many watch-all streams at once
(each its own gRPC channel and thread, reading the whole snapshot), while a probe on another channel calls a
one-job List every 0.2 s. Prints how long each stream took for its snapshot and the probe's latency: what a
crowd of watchers (a portal's replicas after a restart, a fleet of dashboards) costs the callers beside them.
Outside QA scale F1 measured this with its own client; this is the same measure, kept with the repository.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc  # noqa: E402
from common import jobs  # noqa: E402

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc  # noqa: E402
from federator.model import Job, JobId  # noqa: E402
from federator.security.authz import recorded_owner  # noqa: E402
from federator.store import SqliteJobStore  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(db: Path, count: int) -> None:
    store = SqliteJobStore(db)
    batch: list[Job] = []
    for i, request in enumerate(jobs(count)):
        spec = request.spec
        job_id = JobId(f"{spec.name}-{i:06x}")
        batch.append(Job(job_id=job_id, spec=recorded_owner(spec, "anonymous"), submitted_at=1_000.0 + i))
        if len(batch) == 1_000:
            store.put(batch)
            batch = []
    store.put(batch)
    store.close()


def crowd(target: str, streams: int, expected: int) -> tuple[list[float], list[float]]:
    took: list[float] = []

    def one() -> None:
        start, seen = time.perf_counter(), 0
        with grpc.insecure_channel(target) as ch:
            call = jobs_pb2_grpc.JobServiceStub(ch).Watch(jobs_pb2.WatchJobsRequest(send_bookmarks=True),
                                                          timeout=600)
            for message in call:
                if message.bookmark:
                    break
                seen += 1
            call.cancel()
        took.append(round(time.perf_counter() - start, 1) if seen >= expected else -1.0)

    threads = [threading.Thread(target=one) for _ in range(streams)]
    for t in threads:
        t.start()
    probe: list[float] = []
    with grpc.insecure_channel(target) as ch:
        stub = jobs_pb2_grpc.JobServiceStub(ch)
        while any(t.is_alive() for t in threads):
            start = time.perf_counter()
            stub.List(jobs_pb2.ListJobsRequest(page_size=1), timeout=60)
            probe.append((time.perf_counter() - start) * 1e3)
            time.sleep(0.2)
    for t in threads:
        t.join()
    return sorted(took), sorted(probe)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--streams", default="1,8,32")
    args = p.parse_args()
    logging.disable(logging.WARNING)  # the new store's notice
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fed.db"
        fill(db, args.jobs)
        (Path(tmp) / "policy.yaml").write_text("defaultQueue: {weight: 1, maxPendingJobs: 100000}\n")
        port, metrics = free_port(), free_port()
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")}
        serve = subprocess.Popen(
            [sys.executable, "-m", "federator", "serve", "--insecure", "--listen", f"127.0.0.1:{port}",
             "--metrics-listen", f"127.0.0.1:{metrics}", "--db", str(db), "--policy", str(Path(tmp) / "policy.yaml"),
             "--settle-seconds", "0", "--max-watches-per-user", "0"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "serve.log", "w"))  # noqa: SIM115
        try:
            target = f"127.0.0.1:{port}"
            with grpc.insecure_channel(target) as ch:
                grpc.channel_ready_future(ch).result(timeout=120)
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                while len(stub.List(jobs_pb2.ListJobsRequest(page_size=1), timeout=60).jobs) == 0:
                    time.sleep(0.5)
            print(f"| streams | snapshot of {args.jobs} jobs, each stream (s): fastest / median / slowest "
                  "| a one-job List meanwhile (ms): p50 / p99 / max |")
            print("|---|---|---|")
            for count in (int(n) for n in args.streams.split(",")):
                took, probe = crowd(target, count, args.jobs)
                p99 = probe[min(len(probe) - 1, int(len(probe) * 0.99))]
                print(f"| {count} | {took[0]} / {took[len(took) // 2]} / {took[-1]} "
                      f"| {probe[len(probe) // 2]:.0f} / {p99:.0f} / {probe[-1]:.0f} |", flush=True)
        finally:
            serve.terminate()
            serve.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
