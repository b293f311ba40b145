"""A FederatedJob refused as invalid stays Failed across a federator restart, against a real API server.

Outside QA F15: after a restart the controller judged the refused object again before any member had reported,
when an unknown accelerator model is only a warning, and `acceleratorModels: [H1000]` came back as a Pending job.
Here the status is the one the real kube-apiserver stored through the CRD's status schema, read back by the
informer of a federator that starts while its member (a MemberCluster) has not reported yet. A corrected (here:
scaled) spec of a refused object is judged again once the member has reported (outside QA G3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import yaml

from federator.backends.kube.api import FEDERATED_JOBS, KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.store import KubeJobStore
from federator.server.federator import Federator

from builders import cluster, pool
from kube_support import Testbed, host_alone
from support import until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "refusals"
H100 = "NVIDIA-H100-80GB-HBM3"
TYPO = yaml.safe_dump({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                       "metadata": {"name": "typo-model", "namespace": NAMESPACE},
                       "spec": {"kind": "training", "replicas": 2, "acceleratorModels": ["H1000"],
                                "resources": {"cpu": "1", "nvidia.com/gpu": 8}}})


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """A host control plane alone, with the CRDs."""
    with host_alone(tmp_path_factory.mktemp("refusal-bed"), NAMESPACE) as bed:
        yield bed


def test_a_refused_federatedjob_stays_failed_when_the_federator_restarts(host: Testbed) -> None:
    async def main() -> None:
        api = KubeApi.connect(host.host.kubeconfig)

        def status(name: str = "typo-model") -> dict[str, object]:
            return dict(api.get(FEDERATED_JOBS, name, NAMESPACE).get("status") or {})

        store = KubeJobStore(api, namespace=NAMESPACE)
        fed = Federator(store=store)
        ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE)
        await ctl.start()
        try:
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, cluster("member-a", "east", pool(H100, nodes=2, free=8)).capacity)
            await ctl.write_members()  # its MemberCluster: the next federator expects member-a
            host.kubectl("host", "apply", "-f", "-", input=TYPO)
            host.kubectl("host", "apply", "-f", "-", input=TYPO.replace("training", "inference")
                         .replace("typo-model", "typo-chat"))
            await until(lambda: status().get("phase") == "Failed" and status("typo-chat").get("phase") == "Failed")
            refused = status()
            assert "spec.acceleratorModels[0]: unknown accelerator model 'H1000'" in str(refused["message"])
        finally:
            await ctl.stop()
            store.close()

        # Restarted (a helm upgrade, a failover): member-a has not reported to this one.
        store = KubeJobStore(api, namespace=NAMESPACE)
        fed = Federator(store=store)
        ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE)
        await ctl.start()
        try:
            assert not fed.intake.fleet_settled()  # an unknown model is only a warning now
            uid = api.get(FEDERATED_JOBS, "typo-model", NAMESPACE)["metadata"]["uid"]
            await until(lambda: uid in ctl._refused or fed.jobs.named("typo-model"))  # its ADDED event handled
            assert not fed.jobs.named("typo-model")
            assert status() == refused  # still Failed, in the first federator's words; no job id

            # The inference job refused alike may be scaled (the CRD lets the spec of a job that never ran change,
            # outside QA G3): a new spec, judged again once every member has reported, so refused again, not
            # admitted on a mere warning.
            host.kubectl("host", "scale", "fj", "typo-chat", "--replicas=3", "-n", NAMESPACE)
            assert status("typo-chat").get("observedGeneration") == 1 and not fed.jobs
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, cluster("member-a", "east", pool(H100, nodes=2, free=8)).capacity)
            await until(lambda: status("typo-chat").get("observedGeneration") == 2 or bool(fed.jobs))
            assert status("typo-chat")["phase"] == "Failed" and not fed.jobs
            assert "unknown accelerator model 'H1000'" in str(status("typo-chat")["message"])
        finally:
            await ctl.stop()
            store.close()

    asyncio.run(main())
