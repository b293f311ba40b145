"""Two `federator serve --kubeconfig` replicas on one Lease: the leader holds a gang's reservation, is SIGKILLed, and
the standby that takes the Lease holds on from the clocks the gang's FederatedJob status kept, not from its own
start (backends/kube/reservation_clocks.py).

The restart test (test_kube_reservation_restart_testbed.py) stops one process and starts it again: its clean stop
writes what was due and releases the Lease. Here the leader dies as a node failure kills it, without a word: no
flush on the way out, no release; the standby waits the Lease out, then loads the jobs and the clocks from the
FederatedJobs as they are then. Real processes on the test bed, as the chart runs them (replicaCount 2): one member
(member-a, 2 x 8 H100) and its agent, which dials one address, the leader's (as a Service in front of the pods: a
standby serves no gRPC, so the address is the new leader's once it leads). A job of another queue runs on one node
for good, and a 2 x 8 H100 gang waits past reservations.afterSeconds and holds room on member-a.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

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
from support import eventually, scraped

try:
    from tests.testbed.testbed import DELAY_ANNOTATION, H100, gpu_nodes
except ImportError:  # kube_support put tests/testbed on sys.path
    from testbed import DELAY_ANNOTATION, H100, gpu_nodes  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

POLICY = "reservations: {afterSeconds: 1, maxReservations: 1, maxHoldSeconds: 3600}\n"


@dataclass
class Replica:
    identity: str
    proc: Process
    ready: Path
    metrics_url: str

    def log(self) -> str:
        return self.proc.log.read_text() if self.proc.log.exists() else ""

    def leads(self) -> bool:
        return self.ready.exists()

    def holding(self) -> bool:
        """This replica's cycles hold one reservation (its own gauge)."""
        return scraped(self.metrics_url, "federator_reservations") == 1

    def cycles(self) -> float:
        return scraped(self.metrics_url, "federator_scheduling_cycle_duration_seconds_count") or 0


@dataclass
class Pair:
    bed: Testbed
    fed: KubeFederation
    replicas: list[Replica]

    def kubectl(self, *args: str, input: str | None = None) -> Any:
        return self.bed.kubectl("host", *args, input=input)

    def kept(self, name: str) -> Any:
        """status.reservation of FederatedJob `name`, as the API server stored it."""
        proc = self.bed.kubectl("host", "get", "fj", name, "-n", JOBS_NAMESPACE, "-o", "json", check=False)
        return ((json.loads(proc.stdout).get("status") or {}).get("reservation") if proc.returncode == 0 else None)

    def status(self, name: str) -> dict[str, Any]:
        proc = self.bed.kubectl("host", "get", "fj", name, "-n", JOBS_NAMESPACE, "-o", "json")
        return dict(json.loads(proc.stdout).get("status") or {})

    def holder(self) -> str:
        proc = self.bed.kubectl("host", "get", "lease", "federator", "-n", LEASE_NAMESPACE, "-o", "json")
        return str(json.loads(proc.stdout)["spec"].get("holderIdentity") or "")

    def logs(self) -> str:
        procs = [*(r.proc for r in self.replicas), *self.fed.agents.values()]
        return "\n".join(f"--- {p.name}\n{p.log.read_text()[-4000:]}" for p in procs if p.log.exists())


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    work = tmp_path_factory.mktemp("reservation-handover")
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    (work / "federation").mkdir()
    with own_bed(work / "bed", members=("member-a",), nodes={"member-a": gpu_nodes("member-a-h100", H100, 2, 8)}) \
            as bed:
        fed = KubeFederation(workdir=work / "federation", tls=False)
        fed.grpc_target = f"127.0.0.1:{free_listen_port()}"  # both replicas listen there; only the leader binds it
        host = service_account_kubeconfig(bed, "host", "federator", work / "federator.kubeconfig")
        replicas = []
        for identity in ("replica-a", "replica-b"):
            ready, metrics = work / f"ready-{identity}.json", f"127.0.0.1:{free_listen_port()}"
            proc = fed.spawn(f"federator-{identity}", [
                "serve", "--insecure", "--listen", fed.grpc_target, "--metrics-listen", metrics,
                "--ready-file", str(ready), "--db", str(work / f"usage-{identity}.db"), "--policy", str(policy),
                "--kubeconfig", str(host), "--watch-namespace", JOBS_NAMESPACE, "--lease-namespace", LEASE_NAMESPACE,
                "--identity", identity, *LEASE_TIMES,
                "--report-interval", "0.5", "--cycle-interval", "0.2"])
            replicas.append(Replica(identity, proc, ready, f"http://{metrics}/metrics"))
        try:
            agent = service_account_kubeconfig(bed, "member-a", "federator-agent", work / "agent-member-a.kubeconfig")
            fed.start_kube_agent("member-a", kubeconfig=agent, region=REGIONS["member-a"])
            yield Pair(bed, fed, replicas)
        finally:
            fed.stop()
            for r in replicas:
                r.proc.stop()


def _job(name: str, queue: str, replicas: int) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "queue": queue, "replicas": replicas,
                 "resources": {"nvidia.com/gpu": 8, "cpu": "1"}, "acceleratorModels": ["H100"],
                 "template": {"metadata": {"annotations": {DELAY_ANNOTATION: "3600s"}}}}})


def test_the_replica_that_takes_the_lease_holds_the_reservation_on_from_the_dead_leaders_clocks(pair: Pair) -> None:
    eventually(lambda: any(r.leads() for r in pair.replicas), timeout=90,
               what=lambda: f"one replica to lead and serve\n{pair.logs()}")
    pair.kubectl("apply", "-f", "-", input=_job("filler", "other", 1))
    eventually(lambda: pair.status("filler").get("phase") == "Running", timeout=120,
               what=lambda: f"filler Running\n{pair.logs()}")
    pair.kubectl("apply", "-f", "-", input=_job("gang", "train", 2))
    first = eventually(lambda: (k := pair.kept("gang")) and k.get("cluster") == "member-a" and k, timeout=60,
                       what=lambda: f"the gang's reservation kept in its status ({pair.kept('gang')!r})\n{pair.logs()}")
    assert first["since"] == first["began"] and "restsUntil" not in first
    leader = next(r for r in pair.replicas if r.identity == pair.holder())
    standby = next(r for r in pair.replicas if r is not leader)
    assert leader.proc.alive() and leader.holding()
    assert standby.proc.alive() and not standby.holding()  # a standby runs no cycles

    leader.proc.stop(signal.SIGKILL)  # a node failure: no flush, no release; the standby waits the Lease out
    eventually(standby.leads, timeout=90, what=lambda: f"the standby to take over\n{pair.logs()}")
    assert pair.holder() == standby.identity
    eventually(standby.holding, timeout=90, what=lambda: f"the new leader holding room\n{pair.logs()}")
    start = standby.cycles()
    eventually(lambda: standby.cycles() >= start + 10, timeout=60,
               what="ten more cycles of the new leader (its controller's loop writes what changed meanwhile)")
    assert standby.holding()
    assert pair.kept("gang") == first  # held since the dead leader's first hold: its maxHoldSeconds runs on
    since = first["since"].split(".")[0] + "Z"  # the reason, which the new leader writes, says times to the second
    reason = pair.status("gang").get("pendingReason") or {}
    assert f"to free on member-a, held for it since {since}" in reason.get("message", ""), reason
    assert pair.status("filler").get("phase") == "Running"
