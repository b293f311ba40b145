"""`federator agent --metrics-listen`: a real agent process beside a real federator (mTLS), read over HTTP.

The agent's side of a partition: while the federator runs the agent is ready,
connected and reporting, and counts the placement it launched; when the
federator stops, /readyz turns 503 (the agent is still alive: /healthz stays
200), and when the federator returns on the same address, ready again.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from federator.cli.get import list_jobs
from federator.cli.job_files import read_specs
from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation

from support import EXAMPLES, eventually

pytestmark = pytest.mark.e2e
CLUSTER = "west-1"
JOB = """
apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata:
  name: agent-metrics-e2e
  annotations:
    federator.io/sim-duration: "30m"
spec:
  kind: training
  replicas: 1
  resources:
    nvidia.com/gpu: 8
    cpu: "8"
    memory: 64Gi
"""


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def sample(base: str, name: str, **labels: str) -> float | None:
    return samples(base).get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[LocalFederation]:
    fed = LocalFederation(workdir=tmp_path, fleet=EXAMPLES / "fleet.yaml",
                          serve_args=["--report-interval", "0.3", "--cycle-interval", "0.2"])
    try:
        fed.start_server(timeout=60)
        yield fed
    finally:
        fed.stop()


def test_agent_endpoint_follows_the_link_to_the_federator(federation: LocalFederation, tmp_path: Path) -> None:
    federation.start_agent(CLUSTER, metrics=True, timeout=60)
    base = federation.agent_endpoints[CLUSTER]
    assert status(f"{base}/healthz") == 200
    eventually(lambda: status(f"{base}/readyz") == 200, timeout=60, what="the agent to be ready")
    assert sample(base, "federator_agent_connected", cluster=CLUSTER) == 1
    first = sample(base, "federator_agent_reports_sent_total")
    assert first is not None and first >= 1
    eventually(lambda: (sample(base, "federator_agent_reports_sent_total") or 0) > first + 2, timeout=60,
               what="more capacity reports sent")
    age = sample(base, "federator_agent_last_send_age_seconds")
    assert age is not None and age < 30

    job_file = tmp_path / "job.yaml"
    job_file.write_text(JOB)
    [job] = submit_specs(federation.client, read_specs([job_file]))
    eventually(lambda: [j.phase.value for j in list_jobs(federation.client) if j.job_id == job.job_id] == ["Running"],
               timeout=60, what="the job to run")
    assert sample(base, "federator_agent_launches_total", result="ok") == 1
    assert sample(base, "federator_agent_launch_duration_seconds_count") == 1
    eventually(lambda: sample(base, "federator_agent_placements", phase="Running") == 1, timeout=30,
               what="the running placement in federator_agent_placements")

    assert federation.server is not None
    federation.server.stop()  # the federator is gone: the agent's side of a partition
    eventually(lambda: status(f"{base}/readyz") == 503, timeout=60, what="/readyz to turn 503")
    assert sample(base, "federator_agent_connected", cluster=CLUSTER) == 0
    assert status(f"{base}/healthz") == 200  # alive: a restart would not bring the federator back
    assert sample(base, "federator_agent_placements", phase="Running") == 1  # no --fence-after: it keeps running

    federation.start_server(timeout=60)  # same address: the agent reconnects on its own
    eventually(lambda: status(f"{base}/readyz") == 200, timeout=60, what="/readyz back to 200")
    assert sample(base, "federator_agent_connected", cluster=CLUSTER) == 1
    assert sample(base, "federator_agent_stream_sessions_total") == 2
