"""`federator usage` as users run it: real serve, agent and CLI processes; the numbers survive a SIGKILL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from federator.accounting import SqliteUsageStore, UsageRecord
from federator.cli.get import list_jobs
from federator.cli.job_files import read_specs
from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation
from federator.model import JobPhase

from support import EXAMPLES, eventually

pytestmark = pytest.mark.e2e


def usage(fed: LocalFederation, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    out = subprocess.run([sys.executable, "-m", "federator", "usage", "--server", fed.grpc_target,
                          "--certs-dir", str(fed.certs.root), "-o", "json", *args],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_usage_of_a_finished_job_is_the_same_after_the_federator_is_killed(tmp_path: Path) -> None:
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml",
                          serve_args=["--report-interval", "0.3", "--cycle-interval", "0.2"])
    try:
        fed.start_server()
        fed.start_agent("west-1")
        [job] = submit_specs(fed.client, read_specs([EXAMPLES / "jobs" / "llm-pretrain.yaml"]))  # 4 x 8 H100, 4s
        eventually(lambda: [j.phase for j in list_jobs(fed.client)] == [JobPhase.SUCCEEDED], timeout=60,
                   what="the job to succeed")
        before = usage(fed, "--by", "provider")
        total = before["total"]["acceleratorSeconds"]  # type: ignore[index]
        assert 32 * 3.5 < total < 32 * 8  # 32 accelerators for the 4 s the simulated job runs (and a report's lag)
        assert [(r["key"], r["placements"]) for r in before["rows"]] == [("oregon-dc", 1)]  # type: ignore[attr-defined]
        assert sum(r["microAcceleratorSeconds"] for r in before["rows"]) == \
            before["total"]["microAcceleratorSeconds"]  # type: ignore[attr-defined,index]

        assert fed.server is not None
        fed.server.kill()
        fed.start_server()
        after = usage(fed, "--by", "provider")
        assert after["rows"] == before["rows"] and after["total"] == before["total"]
        assert usage(fed, "--since", "1h", "--by", "model")["total"] == before["total"]
    finally:
        fed.stop()


def test_serve_deletes_usage_records_past_its_retention_and_keeps_the_rest(tmp_path: Path) -> None:
    """Outside SRE soak: the usage table grew for ever. A real `federator serve --usage-retention` prunes it."""
    def rec(i: int, *, ended_ago: float) -> UsageRecord:
        now = time.time()
        return UsageRecord(placement_id=f"j{i}.g1.c", job_id=f"j{i}", queue="q", user="u", namespace="ns",
                           cluster="c", provider="p", model="m", accelerators_milli=1000, start=now - ended_ago - 10,
                           end=now - ended_ago)

    (tmp_path / "fed").mkdir()
    seeded = SqliteUsageStore(tmp_path / "fed" / "federator.db")
    seeded.put([rec(i, ended_ago=7200) for i in range(1_200)] + [rec(5_000, ended_ago=60)])
    seeded.close()
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml",
                          serve_args=["--usage-retention", "3600"])
    try:
        fed.start_server()

        def pruned() -> str:
            with urllib.request.urlopen(fed.metrics_url, timeout=5) as resp:
                return next((line for line in resp.read().decode().splitlines()
                             if line.startswith("federator_usage_records_pruned_total ")), "")

        eventually(lambda: pruned() == "federator_usage_records_pruned_total 1200.0", timeout=30,
                   what="the old records to be deleted")
        left = usage(fed)
        assert left["total"]["placements"] == 1  # type: ignore[index]
    finally:
        fed.stop()
