"""A HorizontalPodAutoscaler on the host targets a FederatedJob, as the docs offer for an inference job.

The real HPA controller (the host's kube-controller-manager) refuses a scale subresource without a selector
before it reads any metric ("the HPA target's scale is missing a selector"), whatever the metric's type; the CRD's
`labelSelectorPath` and the controller's `status.selector` are what let it go on. No metrics API is served here, so
the autoscaler gets as far as asking for its external metric, which is where a real one would be answered.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from federator.model import JobPhase

from builders import cluster, pool
from kube_support import CRDS, Testbed, controller_running
from support import accepted, until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "autoscaled"
H100 = "NVIDIA-H100-80GB-HBM3"

HPA = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "chat", "namespace": NAMESPACE},
    "spec": {"scaleTargetRef": {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "name": "chat"},
             "minReplicas": 1, "maxReplicas": 4,
             "metrics": [{"type": "External", "external": {
                 "metric": {"name": "requests_per_second"},
                 "target": {"type": "AverageValue", "averageValue": "10"}}}]},
}
JOB = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
       "metadata": {"name": "chat", "namespace": NAMESPACE},
       "spec": {"kind": "inference", "replicas": 2, "queue": "default",
                "resources": {"cpu": "1", "nvidia.com/gpu": 1}}}


def test_an_autoscaler_reads_the_federated_jobs_scale_and_goes_on_to_its_metric(tmp_path: Path) -> None:
    bed = Testbed.start(tmp_path, members=(), host_controller_manager=True)
    try:
        bed.kubectl("host", "apply", "-f", str(CRDS))
        bed.kubectl("host", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        bed.kubectl("host", "create", "namespace", NAMESPACE)

        def conditions() -> dict[str, tuple[str, str]]:
            hpa = json.loads(bed.kubectl("host", "get", "hpa", "chat", "-n", NAMESPACE, "-o", "json").stdout)
            return {c["type"]: (c["status"], c["reason"]) for c in hpa.get("status", {}).get("conditions", [])}

        async def main() -> None:
            async with controller_running(bed, NAMESPACE) as fx:
                fed = fx.fed
                rec = fed.connect(cluster="a", region="east", labels={})
                fed.report(rec, cluster("a", "east", pool(H100, nodes=1, free=8)).capacity)
                bed.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(JOB))
                await accepted(fed, NAMESPACE, "chat")
                fed.schedule_once()
                assert fed.get("chat").phase is JobPhase.PLACED
                bed.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(HPA))
                await until(lambda: "ScalingActive" in conditions(), timeout=60)
                got = conditions()
                assert got["AbleToScale"] == ("True", "SucceededGetScale"), got
                # past the selector, at the metric: no external metrics API answers on this bed
                assert got["ScalingActive"] == ("False", "FailedGetExternalMetric"), got

        asyncio.run(main())
    finally:
        bed.stop()
