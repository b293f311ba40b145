"""Kubernetes mode: `federator get jobs -l` selects FederatedJobs by the metadata.labels they were accepted with
(outside QA, teams from Armada, M4): the federator's job table is filled from the objects, and List filters it as in
standalone mode (server/job_listing.py). Real host and member kube-apiservers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, Kube
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]


def _job(name: str, job_set: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE, "labels": {"armada/job-set": job_set}},
        "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}}})


def test_get_jobs_l_selects_federated_jobs_by_their_labels(kube: Kube) -> None:
    names = {"ls-a": "js1", "ls-b": "js2", "ls-c": "js1"}
    for name, job_set in names.items():
        kube.kubectl("host", "apply", "-f", "-", input=_job(name, job_set))
    try:
        eventually(lambda: all((kube.fj(n) or {}).get("status", {}).get("jobId") for n in names), timeout=120,
                   what=lambda: f"all three accepted\n{kube.logs()}")

        def cli(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "federator", *argv, *kube.fed.client_args()],
                                  capture_output=True, text=True, timeout=60)

        listed = cli("get", "jobs", "-l", "armada/job-set=js1", "--name-prefix", "ls-", "-o", "json")
        assert listed.returncode == 0, listed.stderr
        assert sorted(d["metadata"]["name"] for d in json.loads(listed.stdout)) == ["ls-a", "ls-c"]
    finally:
        for name in names:
            kube.kubectl("host", "delete", "fj", name, "--timeout=60s", check=False)
