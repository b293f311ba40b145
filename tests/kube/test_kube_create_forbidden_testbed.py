"""A training gang whose pods a ResourceQuota in the member's workload namespace forbids is refused at once, in the
API server's words, on a real member (outside provider QA F6): before, the user read "0 of 2 replicas running" and,
after the gang timeout, "0 of 2 pods bound", the word "quota" nowhere. The real Job controller says it only in a
Warning Event on the Job, reason FailedCreate, which the agent now watches (with its RBAC of deploy/kubernetes).

A cpu quota: the agent holds only accelerator quotas back from its report (resource_quotas.py), so the federator
sends the gang, as it would after a quota changed between report and launch."""

from __future__ import annotations

import json

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, WORKLOADS, Kube
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

NAME = "quota-gang"
DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"


def test_a_gang_a_resource_quota_forbids_is_refused_at_once_with_the_quota_named(kube: Kube) -> None:
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "provider-cap", "namespace": WORKLOADS},
             "spec": {"hard": {"requests.cpu": "1"}}}
    job = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
           "metadata": {"name": NAME, "namespace": JOBS_NAMESPACE},
           "spec": {"kind": "training", "replicas": 2, "resources": {"nvidia.com/gpu": 8, "cpu": "2"},
                    "acceleratorModels": ["H100"],  # member-a's only
                    "template": {"metadata": {"annotations": {DELAY: "600s"}}}}}
    kube.kubectl("member-a", "apply", "-f", "-", input=yaml.safe_dump(quota))
    try:
        eventually(lambda: (kube.json("member-a", "get", "resourcequota", "provider-cap", "-n", WORKLOADS)
                            .get("status") or {}).get("hard"), timeout=60, what="the quota controller's status.hard")
        kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(job))
        # The gang timeout (120 s) would say "0 of 2 pods bound" and nothing of a quota: these words are the refusal's.
        eventually(lambda: "exceeded quota: provider-cap" in json.dumps(kube.fj(NAME) or {}), timeout=90,
                   what=lambda: f"the quota named in {NAME}'s status\n{json.dumps(kube.fj(NAME))}\n{kube.logs()}")
        status = json.dumps(kube.fj(NAME))
        assert "refuses to create its pods" in status and "FailedCreate" in status
        events = kube.json("member-a", "get", "events", "-n", WORKLOADS,
                           "--field-selector", "reason=FederatorCreateForbidden")["items"]
        assert events and "exceeded quota: provider-cap" in events[0]["message"]
    finally:
        kube.kubectl("host", "delete", "fj", NAME, "-n", JOBS_NAMESPACE, "--wait=false", check=False)
        kube.kubectl("member-a", "delete", "resourcequota", "provider-cap", "-n", WORKLOADS, check=False)
