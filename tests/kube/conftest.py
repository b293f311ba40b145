"""One real Kubernetes federation for the whole session: the test bed, the CRDs, a federator, two agents.

The test bed (tests/testbed) runs a host control plane and two member clusters
with kwok GPU nodes; `federator serve --kubeconfig <host>` and one
`federator agent --kubeconfig <member>` per member run as real processes,
exactly as a user would start them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kube_support import Kube, Testbed, federation, prepare, ready_members
from support import eventually


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """The test bed with the CRDs in the host and the RBAC manifests of deploy/kubernetes everywhere."""
    bed = Testbed.start(tmp_path_factory.mktemp("kube-testbed"))
    try:
        prepare(bed, users=True)
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="session")
def kube(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    workdir = tmp_path_factory.mktemp("kube-federation")
    with federation(testbed, workdir, "--audit-log", str(workdir / "audit.jsonl")) as k:
        eventually(lambda: ready_members(k) == sorted(testbed.members), timeout=60,
                   what="both member clusters Ready in MemberCluster objects")
        yield k
