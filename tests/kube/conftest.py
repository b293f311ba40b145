"""One real Kubernetes federation for the whole session: the test bed, the CRDs, a federator, two agents.

The test bed (tests/testbed) runs a host control plane and two member clusters
with kwok GPU nodes; `federator serve --kubeconfig <host>` and one
`federator agent --kubeconfig <member>` per member run as real processes,
exactly as a user would start them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kube_support import (
    CRDS,
    JOBS_NAMESPACE,
    RBAC,
    REGIONS,
    Kube,
    KubeFederation,
    Testbed,
    service_account_kubeconfig,
)
from support import eventually


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """The test bed with the CRDs in the host and the RBAC manifests of deploy/kubernetes everywhere."""
    bed = Testbed.start(tmp_path_factory.mktemp("kube-testbed"))
    try:
        bed.kubectl("host", "apply", "-f", str(CRDS))
        bed.kubectl("host", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        bed.kubectl("host", "apply", "-f", str(RBAC / "rbac-federator.yaml"))
        bed.kubectl("host", "apply", "-f", str(RBAC / "rbac-users.yaml"))
        for member in bed.members:
            bed.kubectl(member, "apply", "-f", str(RBAC / "rbac-agent.yaml"))
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="session")
def kube(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    workdir = tmp_path_factory.mktemp("kube-federation")
    # Every process runs as its service account, with exactly the rules of deploy/kubernetes/rbac-*.yaml.
    host = service_account_kubeconfig(testbed, "host", "federator", workdir / "federator.kubeconfig")
    fed = KubeFederation(workdir=workdir, tls=False, serve_args=[
        "--kubeconfig", str(host), "--watch-namespace", JOBS_NAMESPACE, "--lease-namespace", "federator-system",
        "--report-interval", "0.5", "--cycle-interval", "0.2", "--audit-log", str(workdir / "audit.jsonl")])
    try:
        fed.start_server(timeout=60)
        for member in testbed.members:
            kubeconfig = service_account_kubeconfig(testbed, member, "federator-agent",
                                                    workdir / f"agent-{member}.kubeconfig")
            fed.start_kube_agent(member, kubeconfig=kubeconfig, region=REGIONS[member])
        k = Kube(testbed, fed, workdir)

        def all_ready() -> bool:
            items = k.json("host", "get", "memberclusters")["items"]
            return sorted(i["metadata"]["name"] for i in items
                          if (i.get("status") or {}).get("state") == "Ready") == sorted(testbed.members)

        eventually(all_ready, timeout=60, what="both member clusters Ready in MemberCluster objects")
        yield k
    finally:
        fed.stop()
