"""A job's restarts over real gRPC: `federator serve` and two simulated agents as processes (mTLS, loopback).

A gang placed again after its cluster was Lost said only that it ran on the other cluster; `get jobs` now says
RESTARTS "1 (ClusterNotReady, ...)" and the Job message carries the count, the reason naming the lost cluster and
when (types.proto, Job.restarts; outside pretraining QA, P5). A job placed once shows 0.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_support import FAST, cluster_state, job, jobs_by_name

from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation
from federator.model import JobPhase, ReasonCode

from support import eventually

pytestmark = pytest.mark.e2e


def _free_ports(n: int, low: int = 22000, high: int = 23000) -> list[int]:
    """Free loopback ports of this test's range (a shared machine gives each worker its own)."""
    found: list[int] = []
    for port in range(low, high):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == n:
            return found
    pytest.skip(f"no {n} free ports in {low}-{high}")


def test_a_gang_placed_again_after_its_cluster_was_lost_shows_one_restart_and_why(
        tmp_path: Path, twin_fleet: Path) -> None:
    grpc_port, metrics_port = _free_ports(2)
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=twin_fleet, grpc_target=f"127.0.0.1:{grpc_port}",
                          serve_args=[*FAST, "--lease-seconds", "1", "--lost-after", "3",
                                      "--metrics-listen", f"127.0.0.1:{metrics_port}"])
    try:
        fed.start_server()
        for name in ("a-1", "b-1"):
            fed.start_agent(name)
        (submitted,) = submit_specs(fed.client, [job("pretrain", duration="300s")])
        first = eventually(lambda: (j := jobs_by_name(fed)["pretrain"]).phase is JobPhase.RUNNING and j,
                           timeout=60, what="the job to run")
        assert first.restarts == 0 and first.last_restart_reason is None
        home = first.placements[0].cluster
        other = "b-1" if home == "a-1" else "a-1"
        fed.agents[home].kill()
        eventually(lambda: cluster_state(fed, home) == "Lost", timeout=60, what=f"{home} to be Lost")
        moved = eventually(lambda: (j := jobs_by_name(fed)["pretrain"]).phase is JobPhase.RUNNING
                           and j.placements[0].cluster == other and j, timeout=60, what="the job to run elsewhere")
        assert moved.job_id == submitted.job_id and moved.restarts == 1
        assert moved.last_restart_reason is not None
        assert moved.last_restart_reason.code is ReasonCode.CLUSTER_NOT_READY
        assert home in moved.last_restart_reason.message
        assert first.placed_at < moved.last_restart_at <= moved.placed_at

        (steady,) = submit_specs(fed.client, [job("steady", gpus=1, duration="300s")])  # placed once, on `other`
        eventually(lambda: jobs_by_name(fed)["steady"].phase is JobPhase.RUNNING, timeout=60, what="steady to run")

        out = subprocess.run([sys.executable, "-m", "federator", "get", "jobs", *fed.client_args()],
                             capture_output=True, text=True, check=True).stdout
        header, *rows = out.splitlines()
        column = header.split().index("RESTARTS")
        shown = {row.split()[0]: row.split()[column:column + 3] for row in rows}
        assert shown[submitted.job_id][0] == "1" and shown[submitted.job_id][1] == "(ClusterNotReady,"
        assert shown[steady.job_id][0] == "0"
    finally:
        fed.stop()
