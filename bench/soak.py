"""A soak of the live federator: a national backlog, a hundred clusters, a thousand organisations, for an hour.

Not a test: run it by hand and copy its figures into docs/benchmarks.md ("A soak of the live federator").

    .venv/bin/python bench/soak.py --out /tmp/soak --backlog 30000 --clusters 100 --minutes 40

One real `federator serve` (plaintext on loopback, its SQLite store preloaded with `--backlog` pending jobs of the
benchmarks' mixed shapes, as a restarted federator finds them) and `--clusters` simulated members: `--cli-agents`
of them as real `federator agent --sim` processes (these are killed with SIGKILL and restarted mid-soak), the rest
as the real Agent class in one separate process (a process each would not fit on a small machine). Beside them,
each in a process of its own:

- `churn`: a thousand organisations (queue `org-NNNN`) submitting short jobs, arrays and chains (afterok), cancelling,
  holding and releasing, scaling their inference services, reading Get, List pages and Logs, following logs;
- `watch`: `--watchers` JobService.Watch streams (with bookmarks) open for the whole soak, each counting what it
  reads and how far its last revision trails the newest one seen by any watcher;
- the sampler (this process): every `--every` seconds one CSV row (`samples.csv`): resident memory, open fds and
  threads of serve and of one CLI agent; the store's file and -wal sizes; rows per table (read-only `sqlite3` on a
  copy); /metrics bytes and series; the scheduling cycle's mean duration over the minute and the pending jobs;
  List/Get/Submit latency from ghz (the independent Go load generator, scripts/fetch_tools.py ghz) or, without it,
  from a sequential Python client; the churn's and watchers' own counts.

Mid-soak: `federator backup` of the live store (its size and how long it took), and two CLI agents killed with
SIGKILL and restarted. At the end every job is listed (`end.json`): names listed twice (a Submit that made two
jobs), request ids answered with two job ids, and the answered jobs still there (`final_check`).

A correct Watch client: OUT_OF_RANGE lists again (`relists`), RESOURCE_EXHAUSTED (fell behind) resumes.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from common import backlog  # noqa: E402

from federator.api import convert  # noqa: E402
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2  # noqa: E402
from federator.jobfile import parse_job  # noqa: E402
from federator.local import LocalFederation  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
ORGS = 1000


def fleet_doc(n: int) -> dict[str, object]:
    """`n` small clusters in ten regions: room for a few hundred of the churn's jobs, not for the backlog."""
    rng = random.Random(0)
    return {"clusters": [
        {"name": f"c-{i:03d}", "region": f"region-{i % 10:02d}",
         "labels": {"federator.io/price-per-accelerator-hour": f"{rng.uniform(1.5, 4.5):.2f}"},
         "nodes": [{"count": 2, "gpuModel": "NVIDIA-H100-80GB-HBM3", "gpus": 8, "cpu": 96, "memory": "1Ti"},
                   {"count": 2, "gpuModel": "NVIDIA-L40S", "gpus": 4, "cpu": 32, "memory": "256Gi"},
                   {"count": 2, "cpu": 64, "memory": "256Gi"}]}
        for i in range(n)]}


# ---------------------------------------------------------------------------------------------------- the agents

async def agent_pool(target: str, fleet_path: Path, names: list[str]) -> None:
    from federator.agent.agent import Agent, AgentConfig
    from federator.backends.sim.fleet import load_fleet
    from federator.backends.sim.runtime import SimBackend
    fleet = load_fleet(fleet_path)
    agents = [Agent(AgentConfig(cluster=n, region=fleet[n].region, target=target, tls=None,
                                labels=dict(fleet[n].labels)), SimBackend(fleet[n])) for n in names]
    await asyncio.gather(*(a.run() for a in agents))


# ---------------------------------------------------------------------------------------------------- the churn

def spec(name: str, org: int, *, kind: str = "training", seconds: float = 20, gpus: int = 1, model: str = "L40S",
         replicas: int = 1, after: str = "", output: bool = False) -> jobs_pb2.JobSpec:
    ann = {"federator.io/sim-duration": f"{seconds:.0f}s"}
    if output:
        ann["federator.io/sim-output-every"] = "1s"
    doc: dict[str, object] = {
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "annotations": ann},
        "spec": {"kind": kind, "queue": f"org-{org:04d}", "replicas": replicas, "acceleratorModels": [model],
                 "resources": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": gpus}}}
    if after:
        doc["spec"]["dependsOn"] = {"condition": "afterok", "jobs": [after]}  # type: ignore[index]
    return convert.spec_to_pb(parse_job(doc))


class Churn:
    """A thousand organisations' calls, at `rate` operations a second; counts and latencies per operation."""

    def __init__(self, stub: jobs_pb2_grpc.JobServiceStub, out: Path, rate: float) -> None:
        self.stub, self.out, self.rate = stub, out, rate
        self.rng = random.Random(7)
        self.mine: list[str] = []  # job ids answered to a Submit
        self.services: list[str] = []
        self.requests: dict[str, str] = {}  # request id -> job id (duplicates are checked at the end)
        self.lat: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.details: dict[str, str] = {}  # one message per error kind
        self.n = 0

    async def call(self, op: str, coro):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            reply = await coro
        except grpc.aio.AioRpcError as e:
            key = f"{op}:{e.code().name}"
            self.errors[key] = self.errors.get(key, 0) + 1
            self.details.setdefault(key, (e.details() or "")[:300])
            return None
        self.lat.setdefault(op, []).append(time.perf_counter() - t)
        return reply

    async def submit(self, s: jobs_pb2.JobSpec) -> str:
        self.n += 1
        rid = f"soak-{self.n}"
        reply = await self.call("submit", self.stub.Submit(jobs_pb2.SubmitRequest(spec=s, request_id=rid), timeout=60))
        if reply is None:
            return ""
        self.requests[rid] = reply.job.job_id
        self.mine.append(reply.job.job_id)
        return str(reply.job.job_id)

    async def one(self) -> None:
        rng, stub = self.rng, self.stub
        org = rng.randrange(ORGS)
        r = rng.random()
        if r < 0.30:
            await self.submit(spec(f"j-{self.n}", org, seconds=rng.uniform(10, 90), gpus=rng.choice([1, 2, 4]),
                                   output=rng.random() < 0.2))
        elif r < 0.33:
            first = await self.submit(spec(f"prep-{self.n}", org, seconds=15))
            if first:
                await self.submit(spec(f"train-{self.n}", org, seconds=30, after=first))
        elif r < 0.35:
            s = spec(f"sweep-{self.n}", org, seconds=rng.uniform(5, 30))
            self.n += 1
            reply = await self.call("submit_array", stub.Submit(jobs_pb2.SubmitRequest(
                spec=s, request_id=f"soak-array-{self.n}",
                array=jobs_pb2.JobArray(indices="0-9%3", max_running=3)), timeout=60))
            if reply is not None:
                self.mine.extend(j.job_id for j in reply.array_jobs)
        elif r < 0.37:
            jid = await self.submit(spec(f"svc-{self.n}", org, kind="inference", model="L40S", replicas=1))
            if jid:
                self.services.append(jid)
        elif r < 0.42 and self.services:
            await self.call("scale", stub.Scale(jobs_pb2.ScaleJobRequest(
                job_id=rng.choice(self.services[-200:]), replicas=rng.randint(1, 3)), timeout=60))
        elif r < 0.52 and self.mine:
            await self.call("cancel", stub.Cancel(jobs_pb2.CancelJobRequest(job_id=rng.choice(self.mine[-2000:])),
                                                  timeout=60))
        elif r < 0.57 and self.mine:
            jid = rng.choice(self.mine[-2000:])
            if await self.call("hold", stub.Hold(jobs_pb2.HoldJobRequest(job_id=jid), timeout=60)) is not None:
                await self.call("release", stub.Release(jobs_pb2.ReleaseJobRequest(job_id=jid), timeout=60))
        elif r < 0.80 and self.mine:
            await self.call("get", stub.Get(jobs_pb2.GetJobRequest(job_id=rng.choice(self.mine[-5000:])), timeout=60))
        elif r < 0.92:
            await self.call("list", stub.List(jobs_pb2.ListJobsRequest(page_size=100), timeout=60))
        elif self.mine:
            await self.call("logs", stub.Logs(jobs_pb2.JobLogsRequest(job_id=rng.choice(self.mine[-500:]),
                                                                        tail_lines=20), timeout=60))

    async def follow(self) -> None:
        """Follow a running job's logs for a while, again and again (a user's `logs -f`)."""
        while True:
            if not self.mine:
                await asyncio.sleep(1)
                continue
            call = self.stub.FollowLogs(jobs_pb2.FollowLogsRequest(job_id=self.rng.choice(self.mine[-300:])),
                                        timeout=30)
            try:
                async for _ in call:
                    self.lat.setdefault("follow_msg", []).append(0.0)
            except grpc.aio.AioRpcError as e:
                key = f"follow:{e.code().name}"
                self.errors[key] = self.errors.get(key, 0) + 1
            await asyncio.sleep(0.5)

    async def run(self, minutes: float) -> None:
        end = time.monotonic() + minutes * 60
        followers = [asyncio.create_task(self.follow()) for _ in range(4)]
        t0, done, last = time.monotonic(), 0, time.monotonic()
        while time.monotonic() < end:
            due = int((time.monotonic() - t0) * self.rate)
            batch = []
            while done < due:
                batch.append(self.one())
                done += 1
            if batch:
                await asyncio.gather(*batch)
            if time.monotonic() - last >= 10:
                self.dump()
                last = time.monotonic()
            await asyncio.sleep(0.05)
        for f in followers:
            f.cancel()
        self.dump()

    def dump(self) -> None:
        stats = {op: {"n": len(v), "p50_ms": round(1000 * sorted(v)[len(v) // 2], 1),
                      "p99_ms": round(1000 * sorted(v)[int(0.99 * (len(v) - 1))], 1)}
                 for op, v in self.lat.items() if v}
        tmp = self.out / "churn.json.tmp"
        tmp.write_text(json.dumps({"ops": stats, "errors": self.errors, "said": self.details,
                                   "submitted": len(self.mine),
                                   "services": len(self.services)}))
        tmp.replace(self.out / "churn.json")
        (self.out / "requests.json").write_text(json.dumps(self.requests))
        self.lat = {}


async def churn_main(target: str, out: Path, rate: float, minutes: float) -> None:
    async with grpc.aio.insecure_channel(target) as ch:
        await Churn(jobs_pb2_grpc.JobServiceStub(ch), out, rate).run(minutes)


# ---------------------------------------------------------------------------------------------------- the watchers

async def _flat(call: AsyncIterator[jobs_pb2.JobBatch]) -> AsyncIterator[types_pb2.Job]:
    async for batch in call:
        for msg in batch.jobs:
            yield msg


async def watch_main(target: str, out: Path, watchers: int, batches: bool = False) -> None:
    state = [{"read": 0, "bookmarks": 0, "rev": 0, "errors": 0, "restarts": 0, "relists": 0, "fell_behind": 0}
             for _ in range(watchers)]
    newest = [0]

    async def one(i: int) -> None:
        async with grpc.aio.insecure_channel(target) as ch:
            stub = jobs_pb2_grpc.JobServiceStub(ch)
            while True:
                request = jobs_pb2.WatchJobsRequest(send_bookmarks=True, since_revision=state[i]["rev"])
                try:
                    async for msg in (_flat(stub.WatchBatches(request)) if batches else stub.Watch(request)):
                        if msg.bookmark:
                            state[i]["bookmarks"] += 1
                        else:
                            state[i]["read"] += 1
                        state[i]["rev"] = max(state[i]["rev"], msg.revision)
                        newest[0] = max(newest[0], msg.revision)
                except grpc.aio.AioRpcError as e:
                    state[i]["errors"] += 1
                    if e.code() == grpc.StatusCode.OUT_OF_RANGE:  # as jobs.proto says: list again
                        state[i]["rev"] = 0
                        state[i]["relists"] += 1
                    elif e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        state[i]["fell_behind"] += 1
                state[i]["restarts"] += 1
                await asyncio.sleep(1)

    async def dump() -> None:
        while True:
            await asyncio.sleep(5)
            rows = [{**s, "behind": newest[0] - s["rev"]} for s in state]
            (out / "watch.json.tmp").write_text(json.dumps({"newest": newest[0], "watchers": rows}))
            (out / "watch.json.tmp").replace(out / "watch.json")

    await asyncio.gather(dump(), *(one(i) for i in range(watchers)))


# ---------------------------------------------------------------------------------------------------- the sampler

def proc(pid: int) -> dict[str, float]:
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return {"rss_mib": round(int(next(x.split()[1] for x in status if x.startswith("VmRSS:"))) / 1024, 1),
                "threads": int(next(x.split()[1] for x in status if x.startswith("Threads:"))),
                "fds": len(os.listdir(f"/proc/{pid}/fd")),
                "cpu_s": round((int(stat[11]) + int(stat[12])) / CLK_TCK, 1)}
    except (OSError, StopIteration):
        return {"rss_mib": -1, "threads": -1, "fds": -1, "cpu_s": -1}


def scrape(url: str) -> tuple[int, int, dict[str, float]]:
    body = urllib.request.urlopen(url, timeout=120).read().decode()
    series, sums = 0, {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        series += 1
        name = line.split("{", 1)[0].split(" ", 1)[0]
        sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        sums[f"series:{name}"] = sums.get(f"series:{name}", 0) + 1
    return len(body), series, sums


def table_rows(db: Path, out: Path) -> dict[str, int]:
    """Rows per table, read-only, on a copy of the store taken with SQLite's backup (the live file is never
    opened for writing)."""
    copy = out / "rows-copy.db"
    copy.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    q = subprocess.run(["sqlite3", "-readonly", str(copy),
                        "select name from sqlite_master where type='table' order by name"],
                       capture_output=True, text=True, check=True).stdout.split()
    counts = {}
    for t in q:
        n = subprocess.run(["sqlite3", "-readonly", str(copy), f'select count(*) from "{t}"'],
                           capture_output=True, text=True, check=False).stdout.strip()
        counts[t] = int(n or -1)
    copy.unlink(missing_ok=True)
    return counts


def ghz_latency(ghz: Path | None, target: str, call: str, data: str, n: int) -> dict[str, float]:
    if ghz is None:
        return {}
    proc_ = subprocess.run([str(ghz), "--insecure", "--proto", str(REPO / "proto/federator/v1/jobs.proto"),
                            "--import-paths", str(REPO / "proto"), "--call", f"federator.v1.JobService.{call}",
                            "-c", "4", "-n", str(n), "--timeout", "60s", "-d", data, "-O", "json", target],
                           capture_output=True, text=True, check=False)
    try:
        r = json.loads(proc_.stdout)
    except json.JSONDecodeError:
        return {"error": 1}
    lat = {d["percentage"]: d["latency"] / 1e6 for d in r.get("latencyDistribution") or []}
    return {"p50_ms": round(lat.get(50, -1), 1), "p99_ms": round(lat.get(99, -1), 1),
            "errors": sum(v for k, v in (r.get("statusCodeDistribution") or {}).items() if k != "OK")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--backlog", type=int, default=30_000)
    p.add_argument("--clusters", type=int, default=100)
    p.add_argument("--cli-agents", type=int, default=4)
    p.add_argument("--minutes", type=float, default=40)
    p.add_argument("--rate", type=float, default=20, help="churn operations a second")
    p.add_argument("--watchers", type=int, default=4)
    p.add_argument("--every", type=float, default=60)
    p.add_argument("--serve-arg", action="append", default=[], help="one more `federator serve` argument")
    p.add_argument("--loop-hog-ms", type=float, default=0,
                   help="hold each turn of serve's event loop this long (bench/loop_hog: a saturated loop on purpose)")
    p.add_argument("--watch-batches", action="store_true", help="the watchers use WatchBatches (since 0.18.0)")
    p.add_argument("--no-ghz", action="store_true", help="latency from the churn's own client only")
    p.add_argument("--ghz-requests", type=int, default=20, help="requests of each ghz run (4 concurrent)")
    p.add_argument("--port", type=int, default=0, help="serve's gRPC port (its /metrics on the next); default: any")
    p.add_argument("--ghz", type=Path, default=None, help="a ghz binary (default: scripts/fetch_tools.py ghz's)")
    p.add_argument("--role", default="", help=argparse.SUPPRESS)
    p.add_argument("--target", default="", help=argparse.SUPPRESS)
    p.add_argument("--names", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    out: Path = args.out
    if args.role == "agents":
        asyncio.run(agent_pool(args.target, out / "fleet.yaml", args.names.split(",")))
        return
    if args.role == "churn":
        asyncio.run(churn_main(args.target, out, args.rate, args.minutes))
        return
    if args.role == "watch":
        asyncio.run(watch_main(args.target, out, args.watchers, args.watch_batches))
        return
    if args.loop_hog_ms:  # read by bench/loop_hog/sitecustomize.py in `federator serve` only
        os.environ["LOOP_HOG_MS"] = f"{args.loop_hog_ms:g}"
        os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO / "bench" / "loop_hog"),
                                                    *filter(None, [os.environ.get("PYTHONPATH")])])
    soak(args)


def soak(args: argparse.Namespace) -> None:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = out / "fed"
    fleet_path = out / "fleet.yaml"
    doc = fleet_doc(args.clusters)
    fleet_path.write_text(yaml.safe_dump(doc))
    names = [c["name"] for c in doc["clusters"]]  # type: ignore[index]
    fed = LocalFederation(workdir=work, fleet=fleet_path, tls=False, serve_args=[
        "--cycle-interval", "1", "--lease-seconds", "30", "--lost-after", "600",
        *(["--metrics-listen", f"127.0.0.1:{args.port + 1}"] if args.port else []),  # the later flag wins
        *args.serve_arg])
    if args.port:
        fed.grpc_target = f"127.0.0.1:{args.port}"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    backlog(work / "federator.db", args.backlog)
    print(f"backlog of {args.backlog} stored in {time.monotonic() - t0:.0f}s", flush=True)
    fed.start_server(timeout=900)
    assert fed.server is not None
    spid = fed.server.popen.pid
    print(f"serve {spid} ready at {fed.grpc_target} after {time.monotonic() - t0:.0f}s", flush=True)
    cli_names, pool_names = names[:args.cli_agents], names[args.cli_agents:]
    for n in cli_names:
        fed.start_agent(n)
    me = [sys.executable, __file__, "--out", str(out), "--target", fed.grpc_target]
    logs = {r: (out / f"{r}.log").open("ab") for r in ("agents", "churn", "watch")}
    children = {
        "agents": subprocess.Popen([*me, "--role", "agents", "--names", ",".join(pool_names)],
                                   stdout=logs["agents"], stderr=subprocess.STDOUT),
        "watch": subprocess.Popen([*me, "--role", "watch", "--watchers", str(args.watchers),
                                   *(["--watch-batches"] if args.watch_batches else [])],
                                  stdout=logs["watch"], stderr=subprocess.STDOUT),
    }
    from fetch_tools import GHZ_VERSION, tools_dir
    built = tools_dir() / f"ghz-{GHZ_VERSION}" / "ghz"  # scripts/fetch_tools.py ghz builds it; never here
    # the backlog's first cycle, and its reasons written, before the churn
    while scrape(fed.metrics_url)[2].get("federator_scheduling_cycle_duration_seconds_count", 0) < 1:
        time.sleep(1)
    print(f"first cycle done after {time.monotonic() - t0:.0f}s", flush=True)
    children["churn"] = subprocess.Popen([*me, "--role", "churn", "--rate", str(args.rate),
                                          "--minutes", str(args.minutes)],
                                         stdout=logs["churn"], stderr=subprocess.STDOUT)
    start = time.monotonic()
    rows: list[dict[str, object]] = []
    prev: dict[str, float] = {}
    killed = backed_up = False
    agent_pid = fed.agents[cli_names[-1]].popen.pid
    db = work / "federator.db"
    events = []
    try:
        while (minute := (time.monotonic() - start) / 60) < args.minutes:
            size, series, sums = scrape(fed.metrics_url)
            cyc_n = sums.get("federator_scheduling_cycle_duration_seconds_count", 0)
            cyc_s = sums.get("federator_scheduling_cycle_duration_seconds_sum", 0)
            row: dict[str, object] = {"t_min": round(minute, 2), "load1": os.getloadavg()[0]}
            row.update({f"serve_{k}": v for k, v in proc(spid).items()})
            row.update({f"agent_{k}": v for k, v in proc(agent_pid).items()})
            row["pool_rss_mib"] = proc(children["agents"].pid)["rss_mib"]
            row["db_mib"] = round(db.stat().st_size / 2**20, 1)
            wal = Path(f"{db}-wal")
            row["wal_mib"] = round(wal.stat().st_size / 2**20, 1) if wal.exists() else 0
            row.update({f"rows_{k}": v for k, v in table_rows(db, out).items()})
            row["metrics_bytes"], row["metrics_series"] = size, series
            for name in ("federator_job_submit_to_placement_seconds_bucket", "federator_grpc_server_handled_total",
                         "federator_jobs", "federator_queue_accelerators", "federator_log_follows"):
                row[f"series_{name}"] = int(sums.get(f"series:{name}", 0))
            d_n, d_s = cyc_n - prev.get("n", 0), cyc_s - prev.get("s", 0)
            row["cycles"] = int(d_n)
            row["cycle_mean_ms"] = round(1000 * d_s / d_n, 1) if d_n else 0
            prev = {"n": cyc_n, "s": cyc_s}
            row["pending"] = sums.get("federator_pending_jobs", 0)
            row["watch_streams"] = sums.get("federator_watch_streams", 0)
            row["log_follows"] = sums.get("federator_log_follows", 0)
            row["store_queued"] = sums.get("federator_store_queued_jobs", 0)
            row["clusters_connected"] = sums.get("federator_clusters_connected", 0)
            ghz = None if args.no_ghz else args.ghz or (built if built.is_file() else None)
            for call, data in (("List", '{"page_size":100}'), ("Get", '{"job_id":"nope"}'),
                               ("Submit", '{"spec":{"name":"ghz-{{.UUID}}","kind":"JOB_KIND_TRAINING","replicas":1,'
                                          '"queue":"org-ghz","resources":{"cpu_milli":1000,"memory_bytes":1073741824,'
                                          '"accelerator_milli":1000}}}')):
                for k, v in ghz_latency(ghz, fed.grpc_target, call, data, args.ghz_requests).items():
                    row[f"ghz_{call}_{k}"] = v
            try:
                churn = json.loads((out / "churn.json").read_text())
                for op, s in churn["ops"].items():
                    row[f"churn_{op}_n"], row[f"churn_{op}_p99_ms"] = s["n"], s["p99_ms"]
                row["churn_errors"] = sum(churn["errors"].values())
            except (OSError, json.JSONDecodeError, KeyError):
                pass
            try:
                w = json.loads((out / "watch.json").read_text())
                row["watch_read"] = sum(x["read"] for x in w["watchers"])
                row["watch_behind_max"] = max(x["behind"] for x in w["watchers"])
                row["watch_restarts"] = sum(x["restarts"] for x in w["watchers"])
                row["watch_relists"] = sum(x.get("relists", 0) for x in w["watchers"])
                row["watch_bookmarks"] = sum(x["bookmarks"] for x in w["watchers"])
            except (OSError, json.JSONDecodeError, KeyError, ValueError):
                pass
            rows.append(row)
            fields = list(dict.fromkeys(k for r in rows for k in r))
            with (out / "samples.csv").open("w", newline="") as f:  # rewritten whole: later rows add columns
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)
            print(json.dumps(row), flush=True)
            if minute >= args.minutes * 0.3 and not killed:
                for n in cli_names[:2]:
                    fed.agents[n].popen.send_signal(signal.SIGKILL)
                    fed.agents[n].popen.wait()
                    fed.start_agent(n)
                killed = True
                events.append({"t_min": round(minute, 2), "event": f"SIGKILL and restart of {cli_names[:2]}"})
            if minute >= args.minutes * 0.5 and not backed_up:
                b0 = time.monotonic()
                to = out / "mid-soak.backup.db"
                to.unlink(missing_ok=True)
                r = subprocess.run([sys.executable, "-m", "federator", "backup", "--db", str(db), "--to", str(to)],
                                   capture_output=True, text=True, check=False)
                events.append({"t_min": round(minute, 2), "event": "backup", "rc": r.returncode,
                               "seconds": round(time.monotonic() - b0, 1),
                               "mib": round(to.stat().st_size / 2**20, 1) if to.exists() else 0,
                               "said": (r.stdout + r.stderr)[-400:]})
                backed_up = True
            (out / "events.json").write_text(json.dumps(events, indent=1))
            time.sleep(max(0.0, args.every - ((time.monotonic() - start) / 60 - minute) * 60))
        children["churn"].wait(timeout=120)
        end = final_check(fed.grpc_target, out)
        end["events"] = events
        (out / "end.json").write_text(json.dumps(end, indent=1))
        print(json.dumps(end), flush=True)
    finally:
        for c in children.values():
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
                try:
                    c.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    c.kill()
        fed.stop()
        shutil.rmtree(out / "rows-copy.db", ignore_errors=True)


def final_check(target: str, out: Path) -> dict[str, object]:
    """Every job listed (pages of 1,000): names listed twice among them (a Submit made two jobs), and how many of
    the jobs the churn was answered for are still there (retention removes finished ones, so one missing is not
    by itself lost: `--serve-arg=--max-finished-jobs-per-user=0` keeps them all to count losses)."""
    requests: dict[str, str] = json.loads((out / "requests.json").read_text())
    listed: list[tuple[str, str, int]] = []
    token = ""
    with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 256 * 2**20)]) as ch:
        stub = jobs_pb2_grpc.JobServiceStub(ch)
        while True:
            page = stub.List(jobs_pb2.ListJobsRequest(page_size=1000, page_token=token), timeout=600)
            listed.extend((j.job_id, j.spec.name, j.phase) for j in page.jobs)
            token = page.next_page_token
            if not token:
                break
    names: dict[str, int] = {}
    for _, name, _ in listed:
        names[name] = names.get(name, 0) + 1
    ids = {job_id for job_id, _, _ in listed}
    return {"listed": len(listed), "duplicate_names": sum(1 for n in names.values() if n > 1),
            "requests": len(requests), "distinct_jobs": len(set(requests.values())),
            "answered_still_listed": sum(1 for j in requests.values() if j in ids)}


if __name__ == "__main__":
    main()
