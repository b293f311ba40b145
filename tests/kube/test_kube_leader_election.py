"""Two federator replicas on one host cluster: only the Lease holder acts; when it dies the other takes over."""

from __future__ import annotations

import json
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.local import Process

from kube_support import KubeFederation, Testbed
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "leader-election"
LEASE = "federator-le-test"


def _fj(name: str) -> str:
    return yaml.safe_dump({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                           "metadata": {"name": name, "namespace": NAMESPACE},
                           "spec": {"kind": "training", "resources": {"nvidia.com/gpu": 8},
                                    "acceleratorModels": ["H100"]}})


class Replica:
    def __init__(self, fed: KubeFederation, identity: str, host_kubeconfig: Path) -> None:
        self.identity = identity
        self.ready = fed.workdir / f"ready-{identity}.json"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.metrics_url = f"http://127.0.0.1:{s.getsockname()[1]}/metrics"
        self.proc: Process = fed.spawn(f"federator-{identity}", [
            "serve", "--insecure", "--listen", "127.0.0.1:0", "--metrics-listen", self.metrics_url[7:-8],
            "--ready-file", str(self.ready), "--kubeconfig", str(host_kubeconfig), "--watch-namespace", NAMESPACE,
            "--lease-name", LEASE, "--lease-namespace", NAMESPACE, "--identity", identity,
            "--lease-duration", "4", "--renew-deadline", "3", "--retry-period", "0.5",
            "--report-interval", "0.5", "--cycle-interval", "0.2"])

    def log(self) -> str:
        return self.proc.log.read_text() if self.proc.log.exists() else ""

    def submitted(self, name: str) -> bool:
        return f"FederatedJob {NAMESPACE}/{name} submitted" in self.log()


@pytest.fixture
def replicas(testbed: Testbed, tmp_path: Path) -> Iterator[list[Replica]]:
    testbed.kubectl("host", "create", "namespace", NAMESPACE)
    fed = KubeFederation(workdir=tmp_path, tls=False)
    pair = [Replica(fed, identity, testbed.host.kubeconfig) for identity in ("replica-a", "replica-b")]
    try:
        yield pair
    finally:
        for r in pair:
            r.proc.stop()
        testbed.kubectl("host", "delete", "namespace", NAMESPACE, "--wait=false", check=False)


def _lease(testbed: Testbed) -> dict[str, Any]:
    proc = testbed.kubectl("host", "get", "lease", LEASE, "-n", NAMESPACE, "-o", "json")
    return dict(json.loads(proc.stdout)["spec"])


def _status(testbed: Testbed, name: str) -> dict[str, Any]:
    proc = testbed.kubectl("host", "get", "fj", name, "-n", NAMESPACE, "-o", "json", check=False)
    return dict(json.loads(proc.stdout).get("status") or {}) if proc.returncode == 0 else {}


def test_one_replica_acts_and_the_other_takes_over_when_it_dies(testbed: Testbed, replicas: list[Replica]) -> None:
    leader = eventually(lambda: next((r for r in replicas if r.ready.exists()), None), timeout=60,
                        what="one replica to lead and serve")
    standby = next(r for r in replicas if r is not leader)
    assert _lease(testbed)["holderIdentity"] == leader.identity
    assert "standing by" in eventually(standby.log, timeout=30, what="the standby to log")
    assert not standby.ready.exists()  # a standby serves no gRPC and writes no ready file,
    with urllib.request.urlopen(standby.metrics_url, timeout=10) as resp:  # but it is alive for probes
        assert resp.status == 200
        page = resp.read().decode()
        assert "federator_leader 0.0" in page  # and says it is not the leader
        assert "federator_leader_acquisitions_total 0.0" in page  # from 0, so that increase() sees it take over
    with urllib.request.urlopen(leader.metrics_url, timeout=10) as resp:
        page = resp.read().decode()
        assert "federator_leader 1.0" in page
        assert "federator_leader_acquisitions_total 1.0" in page

    testbed.kubectl("host", "apply", "-f", "-", input=_fj("first"))
    eventually(lambda: _status(testbed, "first").get("phase") == "Pending", timeout=60,
               what=lambda: f"the leader to take the job\n{leader.log()}")
    first_id = _status(testbed, "first")["jobId"]
    assert leader.submitted("first")
    assert not standby.submitted("first")  # two replicas never both act
    transitions = int(_lease(testbed).get("leaseTransitions") or 0)

    leader.proc.stop(signal.SIGKILL)  # no release: the standby must wait the lease out
    eventually(standby.ready.exists, timeout=60, what=lambda: f"the standby to take over\n{standby.log()}")
    lease = _lease(testbed)
    assert lease["holderIdentity"] == standby.identity
    assert int(lease["leaseTransitions"]) == transitions + 1
    assert "loaded 1 jobs from FederatedJob status" in standby.log()
    with urllib.request.urlopen(standby.metrics_url, timeout=10) as resp:  # the failover is counted (HA QA F2)
        assert "federator_leader_acquisitions_total 1.0" in resp.read().decode()

    testbed.kubectl("host", "apply", "-f", "-", input=_fj("second"))
    eventually(lambda: _status(testbed, "second").get("phase") == "Pending", timeout=60,
               what=lambda: f"the new leader to take a new job\n{standby.log()}")
    assert standby.submitted("second")
    assert _status(testbed, "first")["jobId"] == first_id  # resumed from status, not submitted again
    assert not standby.submitted("first")

    # A clean stop releases the Lease at once.
    standby.proc.stop()
    assert standby.proc.popen.returncode == 0
    assert not _lease(testbed).get("holderIdentity")
