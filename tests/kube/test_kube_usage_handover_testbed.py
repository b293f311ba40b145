"""Usage across leader changes, with two `federator serve --kubeconfig` replicas on one Lease (outside QA kubedr K5).

Each replica keeps its usage records in its own --db and meters only its terms as leader. The QA round found a
replica that led, stood by while a job was deleted, and led again billing the deleted job for ever (its record
left open, nothing to close it: the job gone from the store), and a new leader billing a running placement only
from its takeover. Real processes on the test bed, as the chart runs them (replicaCount 2): member-a (2 x 8 H100)
and its agent, which dials one address, the leader's (as a Service in front of the pods). replica-a leads and sees
a job run; it is SIGKILLed and started again as a standby; replica-b takes over and must bill the job from its
FederatedJob's `status.startedAt`; the job is deleted while replica-b leads; replica-b stops and replica-a leads
again: its record of the job must end at its own last term's end, not run on.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.backends.kube.resources import parse_timestamp
from federator.local import Process, free_listen_port

from kube_support import (
    JOBS_NAMESPACE,
    LEASE_NAMESPACE,
    LEASE_TIMES,
    REGIONS,
    KubeFederation,
    Testbed,
    own_bed,
    service_account_kubeconfig,
)
from support import eventually

try:
    from tests.testbed.testbed import DELAY_ANNOTATION, H100, gpu_nodes
except ImportError:  # kube_support put tests/testbed on sys.path
    from testbed import DELAY_ANNOTATION, H100, gpu_nodes  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]


@dataclass
class Replica:
    identity: str
    args: list[str]
    ready: Path
    db: Path
    metrics: str
    proc: Process | None = None

    def probe(self, path: str) -> int:
        """The HTTP status of `path` on this replica's metrics port (0: no answer), as the kubelet's probe asks."""
        try:
            with urllib.request.urlopen(f"http://{self.metrics}{path}", timeout=3) as resp:  # noqa: S310 - loopback
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            return 0

    def leads(self) -> bool:
        return self.ready.exists()

    def record(self, placement_id: str) -> tuple[float, float | None] | None:
        """(start, end) of `placement_id`'s usage record in this replica's --db, read-only beside the process."""
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT start, end_time FROM usage WHERE placement_id = ?", (placement_id,)).fetchone()
        finally:
            db.close()
        return (row[0], row[1]) if row else None


@dataclass
class Pair:
    bed: Testbed
    fed: KubeFederation
    replicas: dict[str, Replica]
    runs: int = 0

    def start(self, r: Replica) -> None:
        r.ready.unlink(missing_ok=True)
        self.runs += 1
        r.proc = self.fed.spawn(f"federator-{r.identity}-{self.runs}", r.args)

    def kubectl(self, *args: str, input: str | None = None) -> Any:
        return self.bed.kubectl("host", *args, input=input)

    def status(self, name: str) -> dict[str, Any]:
        proc = self.bed.kubectl("host", "get", "fj", name, "-n", JOBS_NAMESPACE, "-o", "json", check=False)
        return dict(json.loads(proc.stdout).get("status") or {}) if proc.returncode == 0 else {}

    def gone(self, name: str) -> bool:
        return self.bed.kubectl("host", "get", "fj", name, "-n", JOBS_NAMESPACE, check=False).returncode != 0

    def holder(self) -> str:
        proc = self.bed.kubectl("host", "get", "lease", "federator", "-n", LEASE_NAMESPACE, "-o", "json")
        return str(json.loads(proc.stdout)["spec"].get("holderIdentity") or "")

    def logs(self) -> str:
        procs = [*(r.proc for r in self.replicas.values() if r.proc), *self.fed.agents.values()]
        return "\n".join(f"--- {p.name}\n{p.log.read_text()[-4000:]}" for p in procs if p.log.exists())


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    work = tmp_path_factory.mktemp("usage-handover")
    (work / "federation").mkdir()
    with own_bed(work / "bed", members=("member-a",), nodes={"member-a": gpu_nodes("member-a-h100", H100, 2, 8)}) \
            as bed:
        fed = KubeFederation(workdir=work / "federation", tls=False)
        fed.grpc_target = f"127.0.0.1:{free_listen_port()}"  # both replicas listen there; only the leader binds it
        host = service_account_kubeconfig(bed, "host", "federator", work / "federator.kubeconfig")
        replicas = {}
        for identity in ("replica-a", "replica-b"):
            ready, db = work / f"ready-{identity}.json", work / f"usage-{identity}.db"
            metrics = f"127.0.0.1:{free_listen_port()}"
            replicas[identity] = Replica(identity, [
                "serve", "--insecure", "--listen", fed.grpc_target,
                "--metrics-listen", metrics, "--ready-file", str(ready), "--db", str(db),
                "--kubeconfig", str(host), "--watch-namespace", JOBS_NAMESPACE, "--lease-namespace", LEASE_NAMESPACE,
                "--identity", identity, *LEASE_TIMES, "--report-interval", "0.5", "--cycle-interval", "0.2"],
                ready, db, metrics)
        p = Pair(bed, fed, replicas)
        try:
            p.start(replicas["replica-a"])  # replica-a alone first: it leads
            eventually(replicas["replica-a"].leads, timeout=90, what=lambda: f"replica-a to lead\n{p.logs()}")
            p.start(replicas["replica-b"])
            agent = service_account_kubeconfig(bed, "member-a", "federator-agent", work / "agent-member-a.kubeconfig")
            fed.start_kube_agent("member-a", kubeconfig=agent, region=REGIONS["member-a"])
            yield p
        finally:
            fed.stop()
            for r in replicas.values():
                if r.proc is not None:
                    r.proc.stop()


def _job(name: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "replicas": 1, "resources": {"nvidia.com/gpu": 1, "cpu": "1"},
                 "acceleratorModels": ["H100"],
                 "template": {"metadata": {"annotations": {DELAY_ANNOTATION: "3600s"}}}}})


def test_usage_is_right_across_leader_changes_and_a_deletion_while_standing_by(pair: Pair) -> None:
    a, b = pair.replicas["replica-a"], pair.replicas["replica-b"]
    assert pair.holder() == "replica-a"
    # the chart's readiness probe (/readyz, outside QA kubedr K6): the leader Ready, the standby alive but not Ready
    eventually(lambda: b.probe("/healthz") == 200, timeout=60, what="the standby's metrics port")
    assert (a.probe("/readyz"), b.probe("/readyz")) == (200, 503)
    pair.kubectl("apply", "-f", "-", input=_job("h"))
    eventually(lambda: pair.status("h").get("phase") == "Running", timeout=120,
               what=lambda: f"h Running\n{pair.logs()}")
    [pid] = pair.status("h")["placementIds"]
    started = parse_timestamp(pair.status("h")["startedAt"])
    eventually(lambda: a.record(pid), timeout=30, what="replica-a's record of h")
    assert a.record(pid) == (pytest.approx(started, abs=1e-3), None)

    # replica-a dies without a word; replica-b takes over and bills h from its start, not from the takeover
    assert a.proc is not None
    a.proc.stop(signal.SIGKILL)
    eventually(b.leads, timeout=90, what=lambda: f"replica-b to take over\n{pair.logs()}")
    assert b.probe("/readyz") == 200
    pair.start(a)  # back as a standby
    eventually(lambda: b.record(pid), timeout=60, what=lambda: f"replica-b's record of h\n{pair.logs()}")
    assert b.record(pid) == (pytest.approx(started, abs=1e-3), None)
    a_open = a.record(pid)
    assert a_open is not None and a_open[1] is None  # replica-a's record, left open by the kill

    # h is deleted while replica-a stands by: replica-b ends it
    pair.kubectl("delete", "fj", "h", "-n", JOBS_NAMESPACE, "--wait=false")
    eventually(lambda: pair.gone("h"), timeout=90, what=lambda: f"h deleted\n{pair.logs()}")
    b_rec = b.record(pid)
    assert b_rec is not None and b_rec[1] is not None

    # replica-b stops cleanly (its Lease released); replica-a leads again with h gone from the store
    assert b.proc is not None
    b.proc.stop(signal.SIGTERM)
    eventually(a.leads, timeout=90, what=lambda: f"replica-a to lead again\n{pair.logs()}")
    a_rec = eventually(lambda: (r := a.record(pid)) and r[1] is not None and r, timeout=30,
                       what=lambda: f"replica-a's stale record of h closed ({a.record(pid)})\n{pair.logs()}")
    assert a_rec[0] == pytest.approx(started, abs=1e-3)
    assert a_rec[1] <= b_rec[1]  # at its own last term's end (its last tick), before the deletion: not billed on
