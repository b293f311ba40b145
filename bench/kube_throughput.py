"""Kubernetes mode: how fast FederatedJobs created in the host reach Placed with their status written.

Not a test: run it by hand and copy its line into docs/benchmarks.md ("The
live federator at scale"). The host is the test bed's real kube-apiserver
(tests/testbed, built by `make testbed`); the federator is a real
`federator serve --kubeconfig <host>` process (FederatedJob controller, status
write-back, Events); capacity comes from simulated agents (`federator agent
--sim`), so the measurement is the host path only:

    .venv/bin/python bench/kube_throughput.py --jobs 2000

FederatedJobs are created from 16 threads as fast as the apiserver takes
them; the clock runs from the first create until every FederatedJob's
`status.phase` reads Placed (or later), as seen by listing them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "testbed"))

from federator.backends.kube.api import FEDERATED_JOBS, KubeApi  # noqa: E402
from federator.local import LocalFederation  # noqa: E402

from testbed import Testbed  # noqa: E402

NAMESPACE = "default"
DONE = {"Placed", "Running", "Succeeded"}


def fleet(clusters: int) -> dict[str, object]:
    return {"clusters": [{"name": f"sim-{i}", "region": f"r{i % 3}",
                          "nodes": [{"count": 50, "gpuModel": "NVIDIA-L40S", "gpus": 4, "cpu": 96,
                                     "memory": "512Gi"}]} for i in range(clusters)]}


def federated_job(i: int) -> dict[str, object]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": f"bench-{i:05d}", "namespace": NAMESPACE,
                         "annotations": {"federator.io/sim-duration": "3600s"}},
            "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "100m", "memory": "128Mi"}}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--clusters", type=int, default=2)
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="federator-kube-bench-"))
    tb = Testbed.start(workdir / "testbed", members=(), nodes={})
    fed: LocalFederation | None = None
    try:
        tb.kubectl("host", "apply", "-f", str(ROOT / "deploy/helm/federator/crds"))
        tb.kubectl("host", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        fleet_path = workdir / "fleet.yaml"
        fleet_path.write_text(yaml.safe_dump(fleet(args.clusters)))
        fed = LocalFederation(workdir=workdir / "fed", fleet=fleet_path, tls=False, serve_args=[
            "--kubeconfig", str(tb.host.kubeconfig), "--watch-namespace", NAMESPACE,
            "--lease-namespace", NAMESPACE, "--cycle-interval", "0.5", "--report-interval", "1"])
        fed.start_server(timeout=120)
        for i in range(args.clusters):
            fed.start_agent(f"sim-{i}")
        api = KubeApi.connect(tb.host.kubeconfig)

        def phases() -> dict[str, str]:
            items = api.list(FEDERATED_JOBS, NAMESPACE).get("items") or []
            return {o["metadata"]["name"]: (o.get("status") or {}).get("phase", "") for o in items}

        while True:  # the agents' clusters are Ready once a probe job is placed
            mc = tb.kubectl_json("host", "get", "memberclusters")["items"]
            if sum((m.get("status") or {}).get("state") == "Ready" for m in mc) == args.clusters:
                break
            time.sleep(0.5)
        load = os.getloadavg()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: api.create(FEDERATED_JOBS, federated_job(i), NAMESPACE), range(args.jobs)))
        created = time.perf_counter() - t0
        while True:
            seen = phases()
            done = sum(ph in DONE for ph in seen.values())
            if done >= args.jobs:
                break
            if time.perf_counter() - t0 > 900:
                raise SystemExit(f"only {done} of {args.jobs} Placed after 900 s")
            time.sleep(0.5)
        took = time.perf_counter() - t0
        print(json.dumps({"jobs": args.jobs, "create_s": round(created, 1),
                          "created_per_s": round(args.jobs / created, 1), "all_placed_s": round(took, 1),
                          "placed_with_status_per_s": round(args.jobs / took, 1),
                          "uptime": load, "uptime_after": os.getloadavg()}), flush=True)
    finally:
        if fed is not None:
            fed.stop()
        tb.stop()


if __name__ == "__main__":
    main()
