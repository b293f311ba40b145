"""One provider floods the federator with clusters sending big capacity reports; does everyone else suffer?

Not a test: run it by hand and copy its table into docs/benchmarks.md ("A provider's flood of clusters").
A real `federator serve` process (plaintext, loopback); in this process: `--flood` fake agents of provider
`acme` (generated stubs, no agent logic: a Hello, then a ~190 KB capacity report every `--interval` s, room
classes of one node each), `--healthy` fake agents of provider `other` sending small reports, and a client
timing ClusterService.List (default view, every page) and JobService.List.

    .venv/bin/python bench/cluster_flood.py --flood 50 --healthy 5 --duration 40
    .venv/bin/python bench/cluster_flood.py --flood 50 --healthy 5 --duration 40 \
        --serve-arg=--max-report-bytes-per-second=0 --serve-arg=--max-clusters-per-provider=0

Measures: the federator process's CPU over the window (/proc), how many flood clusters were admitted, List
latency p50/max, and whether any healthy cluster left Ready (Partitioned or Lost) during the window.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from federator.api.v1 import agent_pb2, agent_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from federator.local import LocalFederation

CLK_TCK = os.sysconf("SC_CLK_TCK")
H100 = "NVIDIA-H100-80GB-HBM3"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


_REPORTS: dict[int, agent_pb2.AgentMessage] = {}


def big_report(sequence: int, nodes: int) -> agent_pb2.AgentMessage:
    """A report of `nodes` room classes (built once a size: building them would be the benchmark's own load)."""
    if nodes not in _REPORTS:
        _REPORTS[nodes] = _build(nodes)
    msg = agent_pb2.AgentMessage()
    msg.CopyFrom(_REPORTS[nodes])
    msg.capacity.sequence = sequence
    return msg


def _build(nodes: int) -> agent_pb2.AgentMessage:
    classes = [agent_pb2.RoomClass(free_accelerators=8, cpu_milli=1000 + i, memory_bytes=(1 << 30) + i, count=1)
               for i in range(nodes)]
    pool = agent_pb2.AcceleratorPool(accelerator_model=H100, nodes_by_free=[0] * 8 + [nodes],
                                     total_accelerators=8 * nodes, allocatable_accelerators=8 * nodes,
                                     room_classes=classes)
    return agent_pb2.AgentMessage(capacity=agent_pb2.CapacityReport(
        accelerator_pools=[pool], cpu_milli_allocatable=10**9, cpu_milli_free=10**9,
        memory_bytes_allocatable=1 << 50, memory_bytes_free=1 << 50, node_cpu_milli_free_max=10**6,
        node_memory_bytes_free_max=1 << 40))


async def agent(target: str, name: str, provider: str, nodes: int, interval: float,
                stop: asyncio.Event, admitted: set[str]) -> None:
    """Connects (again, after a refusal, every 2 s) and reports every `interval` until `stop`."""
    async with grpc.aio.insecure_channel(target, options=[("grpc.max_send_message_length", 8 << 20)]) as ch:
        stub = agent_pb2_grpc.AgentServiceStub(ch)
        while not stop.is_set():
            async def messages() -> AsyncIterator[agent_pb2.AgentMessage]:
                yield agent_pb2.AgentMessage(hello=agent_pb2.Hello(
                    cluster=name, region="r", labels={"federator.io/provider": provider}))
                seq = 0
                while not stop.is_set():
                    seq += 1
                    yield big_report(seq, nodes)
                    await asyncio.sleep(interval)

            try:
                async for msg in stub.Connect(messages()):
                    if msg.HasField("welcome"):
                        admitted.add(name)
            except grpc.aio.AioRpcError:
                admitted.discard(name)
                await asyncio.sleep(2)


async def run(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="federator-flood-"))
    fed = LocalFederation(workdir=workdir, tls=False, serve_args=[
        "--report-interval", str(args.interval), "--lease-seconds", "10", "--lost-after", "30", *args.serve_arg])
    fed.start_server()
    assert fed.server is not None
    pid = fed.server.popen.pid
    stop = asyncio.Event()
    admitted: set[str] = set()
    healthy = [f"other-{i}" for i in range(args.healthy)]
    tasks = [asyncio.create_task(agent(fed.grpc_target, n, "other", 4, args.interval, stop, admitted))
             for n in healthy]
    await asyncio.sleep(3)
    tasks += [asyncio.create_task(agent(fed.grpc_target, f"acme-{i:03d}", "acme", args.nodes, args.interval, stop,
                                        admitted)) for i in range(args.flood)]
    await asyncio.sleep(args.warmup)
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    # The timing client runs in a process of its own: this one's loop is busy sending the flood.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        list_seconds, not_ready = await asyncio.to_thread(pool.apply, time_lists,
                                                          (fed.grpc_target, args.duration, healthy))
    cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    stop.set()
    for t in tasks:
        t.cancel()
    fed.stop()
    return {"flood": args.flood, "admitted": len([n for n in admitted if n.startswith("acme-")]),
            "report_kb": round(big_report(1, args.nodes).ByteSize() / 1000), "cpu": f"{100 * cpu:.0f}%",
            "list_p50_ms": round(1000 * statistics.median(list_seconds)),
            "list_max_ms": round(1000 * max(list_seconds)),
            "lists": len(list_seconds), "healthy_not_ready": sorted(not_ready)}


def time_lists(target: str, duration: float, healthy: list[str]) -> tuple[list[float], set[str]]:
    """List every cluster page (default view) and the jobs, every half second for `duration`: the latency of
    each round, and the healthy clusters seen not Ready."""
    list_seconds: list[float] = []
    not_ready: set[str] = set()
    t0 = time.monotonic()
    with grpc.insecure_channel(target) as ch:
        clusters = jobs_pb2_grpc.ClusterServiceStub(ch)
        jobs = jobs_pb2_grpc.JobServiceStub(ch)
        while time.monotonic() - t0 < duration:
            s = time.perf_counter()
            token, rows = "", []
            while True:
                reply = clusters.List(jobs_pb2.ListClustersRequest(page_token=token), timeout=120)
                rows.extend(reply.clusters)
                token = reply.next_page_token
                if not token:
                    break
            jobs.List(jobs_pb2.ListJobsRequest(), timeout=120)
            list_seconds.append(time.perf_counter() - s)
            not_ready |= {c.name for c in rows if c.name in healthy and c.state != "Ready"}
            time.sleep(0.5)
    return list_seconds, not_ready


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flood", type=int, default=50)
    p.add_argument("--healthy", type=int, default=5)
    p.add_argument("--nodes", type=int, default=12_000, help="room classes per flood report (12,000: ~190 KB)")
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=40.0)
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--serve-arg", action="append", default=[], help="passed to federator serve")
    print(asyncio.run(run(p.parse_args())), file=sys.stdout)


if __name__ == "__main__":
    main()
