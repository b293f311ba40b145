"""Admission under a hogged loop (the soak's S3): how many of N concurrent Submits a loaded federator accepts,
refuses (RESOURCE_EXHAUSTED, BUSY or gRPC core's), or lets gRPC end CANCELLED unread, and whether a Watch and an
agent's Connect opened during the flood are still taken.

Why a bench of its own: S3 is a property of gRPC's pick-up (grpc.aio takes each registered method's next call up
from gRPC core a few loop turns at a time), not of the federator's handlers, so it is measured with an
independent load generator (ghz, scripts/fetch_tools.py) against a real `federator serve` whose every loop turn is
held --loop-hog-ms (bench/loop_hog). --pending-cap SOFT,HARD builds serve's server with gRPC core's cap on
calls waiting to be picked up (grpc.server.max_pending_requests and its hard limit; bench/loop_hog), to measure
what that cap would do; --front sends every call through a prototype front end on a thread of its own
(bench/admission_front.py), to measure what admission before the loop would give (docs/benchmarks.md, S3).

    PYTHONPATH=src .venv/bin/python bench/admission.py --submits 300 --loop-hog-ms 40 [--pending-cap 32,64 | --front]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

from admission_front import start_front  # noqa: E402
from fetch_tools import ghz as ghz_binary  # noqa: E402

from federator.api.v1 import agent_pb2, agent_pb2_grpc, jobs_pb2, jobs_pb2_grpc  # noqa: E402
from federator.local import LocalFederation  # noqa: E402

SPEC = {"spec": {"name": "a-{{.UUID}}", "kind": "JOB_KIND_TRAINING", "replicas": 1,
                 "resources": {"cpu_milli": 1000, "memory_bytes": 1073741824}}}


def ghz(target: str, n: int, timeout_s: int) -> dict[str, object]:
    """N Submits at once from ghz (one connection, as a client's channel), each with a deadline of timeout_s."""
    cmd = [str(ghz_binary()), "--proto", str(REPO / "proto/federator/v1/jobs.proto"),
           "--import-paths", str(REPO / "proto"), "--call", "federator.v1.JobService.Submit", "--insecure",
           "-c", str(n), "-n", str(n), "--timeout", f"{timeout_s}s", "-d", json.dumps(SPEC), "--format", "json",
           target]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if not out.stdout.strip():
        raise SystemExit(f"ghz failed ({out.returncode}): {out.stderr[-2000:]}")
    r = json.loads(out.stdout)
    ok = [d["latency"] / 1e9 for d in r.get("details") or [] if d.get("status") == "OK"]
    ok.sort()
    not_ok = [d["latency"] / 1e9 for d in r.get("details") or [] if d.get("status") != "OK"]
    errors = sorted(r.get("errorDistribution") or {})
    return {"status": r.get("statusCodeDistribution"), "errors": errors[:1] + errors[-1:],
            "accepted_p99_s": round(ok[min(len(ok) - 1, int(0.99 * len(ok)))], 2) if ok else None,
            "accepted_max_s": round(ok[-1], 2) if ok else None,
            "others_answered_s": [round(min(not_ok), 2), round(max(not_ok), 2)] if not_ok else None}


async def probes(target: str, delay: float, timeout_s: float) -> dict[str, object]:
    """A Watch and an agent's Connect opened `delay` s into the flood: seconds until each is answered."""
    await asyncio.sleep(delay)
    out: dict[str, object] = {}
    async with grpc.aio.insecure_channel(target) as ch:
        async def watch() -> None:
            t = time.monotonic()
            try:
                call = jobs_pb2_grpc.JobServiceStub(ch).Watch(jobs_pb2.WatchJobsRequest(), timeout=timeout_s)
                await call.read()
                out["watch_first_s"] = round(time.monotonic() - t, 2)
                call.cancel()
            except grpc.aio.AioRpcError as e:
                out["watch_first_s"] = f"{e.code().name} after {time.monotonic() - t:.1f}s"

        async def connect() -> None:
            t = time.monotonic()

            async def hello():  # type: ignore[no-untyped-def]
                yield agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster="probe-1", region="r"))
                await asyncio.sleep(timeout_s)

            try:
                call = agent_pb2_grpc.AgentServiceStub(ch).Connect(hello(), timeout=timeout_s)
                await call.read()
                out["connect_answered_s"] = round(time.monotonic() - t, 2)
                call.cancel()
            except grpc.aio.AioRpcError as e:
                out["connect_answered_s"] = f"{e.code().name} after {time.monotonic() - t:.1f}s"

        await asyncio.gather(watch(), connect())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--submits", type=int, default=300)
    p.add_argument("--loop-hog-ms", type=float, default=40)
    p.add_argument("--pending-cap", default="", help='"SOFT HARD": gRPC core\'s cap on calls not yet picked up')
    p.add_argument("--timeout", type=int, default=60, help="each Submit's deadline, seconds")
    p.add_argument("--front", action="store_true",
                   help="send every call through the prototype front end (bench/admission_front.py)")
    args = p.parse_args()
    os.environ["LOOP_HOG_MS"] = f"{args.loop_hog_ms:g}"
    os.environ["GRPC_PENDING_CAP"] = args.pending_cap
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO / "bench" / "loop_hog"),
                                                *filter(None, [os.environ.get("PYTHONPATH")])])
    workdir = Path(tempfile.mkdtemp(prefix="federator-admission-"))
    fed = LocalFederation(workdir=workdir, tls=False, serve_args=["--cycle-interval", "1"])
    fed.start_server(timeout=120)
    try:
        target, stop_front = start_front(fed.grpc_target) if args.front else (fed.grpc_target, lambda: 0)
        found: dict[str, object] = {}
        side = threading.Thread(target=lambda: found.update(asyncio.run(probes(target, 1.0, 60))))
        side.start()
        row = {"submits": args.submits, "loop_hog_ms": args.loop_hog_ms, "pending_cap": args.pending_cap or None,
               "front": args.front, **ghz(target, args.submits, args.timeout)}
        side.join()
        print(json.dumps({**row, **found, "front_refused": stop_front()}))
    finally:
        fed.stop()


if __name__ == "__main__":
    main()
