"""The disaster-recovery runbook's resubmit step, as operators.md "Disaster recovery" says it, with real processes.

Outside DR QA, D1: a job the restore lost, submitted again, ran beside its orphan for the whole --orphan-grace.
The runbook says to resubmit once the orphans have ended, and how to end them now once no newer copy will be
restored: restart with --orphan-grace 0. This checks that step does what it says: the lost job's orphan is
cancelled, the restored job's running work is adopted again (not launched a second time), and the resubmit then
runs alone.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest
from reliability_support import FAST, job, jobs_by_name, launches, metric

from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation
from federator.model import JobPhase

from support import eventually, federator_cli

pytestmark = pytest.mark.e2e


def _running(fed: LocalFederation, name: str) -> str:
    """The placement id of the job named `name` once it runs."""
    def placed() -> str:
        j = jobs_by_name(fed).get(name)
        return j.placements[-1].placement_id if j is not None and j.phase is JobPhase.RUNNING else ""
    return eventually(placed, what=f"{name} to run")


def test_a_restart_with_no_orphan_grace_ends_the_lost_jobs_orphans_keeps_the_restored_work_and_the_resubmit_runs_alone(
        federation_factory: Callable[..., LocalFederation]) -> None:
    fed = federation_factory("--orphan-grace", "600", agents=("a-1",))
    db = fed.workdir / "federator.db"
    kept = _running(fed, submit_specs(fed.client, [job("kept", gpus=1, duration="600s")])[0].spec.name)
    backup = fed.workdir / "backup.db"
    out = federator_cli("backup", "--db", str(db), "--to", str(backup))
    assert out.returncode == 0, out.stderr
    lost_spec = job("lost", gpus=1, duration="600s")
    lost = _running(fed, submit_specs(fed.client, [lost_spec])[0].spec.name)

    assert fed.server is not None
    fed.server.kill()  # the host is lost; the copy goes in its place
    for leftover in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copy(backup, db)
    fed.start_server()
    assert set(jobs_by_name(fed)) == {"kept"}
    eventually(lambda: metric(fed, "federator_orphan_placements", cluster="a-1") == 1.0, what="the lost job's orphan")

    fed.serve_args = [*FAST, "--orphan-grace", "0"]  # the runbook: no newer copy will come, end the orphans now
    fed.server.stop()
    fed.start_server()
    agent_log = fed.workdir / "agent-a-1.log"
    eventually(lambda: f"cancel placement {lost}: orphan:" in agent_log.read_text(), what="the orphan cancelled")
    eventually(lambda: metric(fed, "federator_orphan_placements", cluster="a-1") == 0.0, what="no orphan counted")

    again = _running(fed, submit_specs(fed.client, [lost_spec])[0].spec.name)
    assert again != lost
    text = agent_log.read_text()
    assert text.index(f"cancel placement {lost}:") < text.index(f"launched placement {again}")
    assert launches(fed)["a-1"].count(kept) == 1  # the restored job's work adopted across both restarts
