"""`federator submit -f` run again after it was killed between the store and the reply: one job, one run.

Found in a chaos run: the CLI was killed after the federator had stored a job
but before its reply arrived, the same file was submitted again, and the job
ran twice. Reproduced the way it was found, with real processes: the CLI talks
through a proxy that swallows the reply, is SIGKILLed once the job is stored,
and the same file is submitted again; the runs are counted in the agents' logs.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from reliability_support import job_of, jobs_by_name, launches

from federator.cli.get import list_jobs
from federator.jobfile import REQUEST_ID_ANNOTATION
from federator.local import LocalFederation
from federator.model import JobPhase

from fault_proxy import proxy_to
from support import eventually

pytestmark = pytest.mark.e2e


def job_file(path: Path, name: str, **annotations: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "annotations": {"federator.io/sim-duration": "0.5s",
                                                   "federator.io/sim-startup": "0.1s", **annotations}},
        "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": 8}},
    }))
    return path


def submit(server: str, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(path), "--server", server,
                           "--insecure", *extra], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("carried", [False, True], ids=["derived-request-id", "file-carries-request-id"])
def test_a_job_file_submitted_again_after_a_killed_submit_exists_once_and_runs_once(
        federation_factory: Callable[..., LocalFederation], tmp_path: Path, carried: bool) -> None:
    fed = federation_factory("--lease-seconds", "5", tls=False)
    extra = {REQUEST_ID_ANNOTATION: "chaos-107-infer"} if carried else {}
    path = job_file(tmp_path / "infer.yaml", "chaos-107-infer", **extra)
    with proxy_to(fed.grpc_target) as proxy:
        proxy.swallow_replies()
        cli = subprocess.Popen([sys.executable, "-m", "federator", "submit", "-f", str(path), "--server",
                                proxy.address, "--insecure"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            stored = eventually(lambda: jobs_by_name(fed).get("chaos-107-infer"), what="the job to be stored")
            assert cli.poll() is None, cli.communicate()  # no reply reached it: killed between store and reply
        finally:
            cli.kill()
            cli.wait()
    eventually(lambda: jobs_by_name(fed)["chaos-107-infer"].phase is JobPhase.SUCCEEDED, what="the job to succeed")

    again = submit(fed.grpc_target, path)  # the rerun, after the first run has finished (as in the chaos run)
    assert again.returncode == 0, again.stderr
    assert f"job {stored.job_id} unchanged" in again.stdout and "--run-again" in again.stdout, again.stdout
    assert [j.job_id for j in list_jobs(fed.client)] == [stored.job_id]  # exists once
    ran = [pid for pids in launches(fed).values() for pid in pids if job_of(pid) == stored.job_id]
    assert len(ran) == 1, launches(fed)  # and ran once, counted in the agents' own logs

    if carried:  # a file naming its run cannot be run again under that request id
        refused = submit(fed.grpc_target, path, "--run-again")
        assert refused.returncode == 2 and str(path) not in refused.stderr and "--run-again" in refused.stderr
        return
    rerun = submit(fed.grpc_target, path, "--run-again")  # asked for in so many words: a new job, run again
    assert rerun.returncode == 0, rerun.stderr
    second = eventually(lambda: (js := [j for j in list_jobs(fed.client) if j.job_id != stored.job_id])
                        and js[0].phase is JobPhase.SUCCEEDED and js[0], what="the second run to succeed")
    assert second.spec.name == stored.spec.name
    assert sum(job_of(pid) == second.job_id for pids in launches(fed).values() for pid in pids) == 1
