"""Two agents on one real member, each its own `--namespace` (a production and a staging federation, which both
call the member "member-a"): each reports, follows and cancels only its own placements.

Outside provider QA: an agent with `--namespace fed-qa5` listed the federator's pods of *other* namespaces in its
report's placement_ids (it watches pods cluster-wide, for capacity), and its federator, reading them as strays of
this cluster, fenced them. The scope is the namespace, not the id's cluster suffix: both federations' ids end in
".member-a" here (tenant_namespaces.TenantNamespaces.holds)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.workloads import adapter_for
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources

from kube_support import Testbed
from support import until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

MEMBER = "member-a"
SPEC = JobSpec(name="train", kind=JobKind.TRAINING, replicas=1, resources=Resources(cpu_milli=1000), queue="research",
               pod_template_json='{"metadata": {"annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "600s"}}}')
JOB = adapter_for({"apiVersion": "batch/v1", "kind": "Job"})


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    tb = Testbed.start(tmp_path_factory.mktemp("two-agents-bed"), members=(MEMBER,))
    try:
        yield tb
    finally:
        tb.stop()


def _jobs(bed: Testbed, namespace: str) -> set[str]:
    return {j["metadata"]["name"] for j in bed.kubectl_json(MEMBER, "get", "jobs", "-n", namespace)["items"]}


@pytest.mark.parametrize("per_queue", [False, True], ids=["namespace", "namespace-per-queue"])
def test_each_agent_reports_and_cancels_only_its_own_namespaces_placements(bed: Testbed, per_queue: bool) -> None:
    mode = "q" if per_queue else "n"  # the bed is the module's: each case its own jobs
    ours = Placement(PlacementId(f"train-p{mode}.g1.member-a"), JobId(f"train-p{mode}"), MEMBER, "east", 1, "", 1)
    theirs = Placement(PlacementId(f"train-s{mode}.g1.member-a"), JobId(f"train-s{mode}"), MEMBER, "east", 1, "", 1)
    prod = f"fed-{mode}"  # the production agent's --namespace; the staging agent's is named as the production
    staging = f"{prod}-staging"  # agent's namespace of a queue "staging" would be
    for namespace in (prod, staging):
        bed.kubectl(MEMBER, "create", "namespace", namespace)
    where = f"{prod}-research" if per_queue else prod  # the production placement's

    async def main() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
        kubeconfig = bed.cluster(MEMBER).kubeconfig
        first = KubeBackend(KubeApi.connect(kubeconfig), namespace=prod, cluster=MEMBER, sync_timeout=60,
                            namespace_per_queue=per_queue)
        second = KubeBackend(KubeApi.connect(kubeconfig), namespace=staging, cluster=MEMBER, sync_timeout=60)
        await first.start(lambda *_, **__: None)
        await second.start(lambda *_, **__: None)
        try:
            assert await first.launch(ours, SPEC) is None
            assert await second.launch(theirs, SPEC) is None
            # Both placements' pods bound (each agent sees both pods: it watches pods everywhere).
            await until(lambda: ours.placement_id in first.capacity().placement_ids
                        and theirs.placement_id in second.capacity().placement_ids, timeout=90)
            prod_listed, staging_listed = first.capacity().placement_ids, second.capacity().placement_ids
            # The production federator fences what it reads as a stray of its member-a: the staging id looks
            # like one (same cluster name). The cancel must not reach the staging namespace.
            await first.cancel(theirs.placement_id)  # its deletes are done when it returns
            # A restarted production agent knows its namespaces again from its own workloads alone.
            again = KubeBackend(KubeApi.connect(kubeconfig), namespace=prod, cluster=MEMBER, sync_timeout=60,
                                namespace_per_queue=per_queue)
            await again.start(lambda *_, **__: None)
            try:
                restarted = again.capacity().placement_ids
            finally:
                await again.stop()
            return prod_listed, staging_listed, second.capacity().placement_ids, restarted
        finally:
            await first.stop()
            await second.stop()

    prod_listed, staging_listed, staging_after, restarted = asyncio.run(main())
    assert prod_listed == restarted == {ours.placement_id}  # was both: the staging pod's id too (outside provider QA)
    assert staging_listed == {theirs.placement_id}
    assert JOB.member_name(theirs.placement_id) in _jobs(bed, staging)  # the foreign cancel deleted nothing there
    assert staging_after == {theirs.placement_id}
    assert JOB.member_name(ours.placement_id) in _jobs(bed, where)
