"""The Kubernetes backend marks a launch refusal `Invalid` (Ack.invalid) only when the API server refused the
workload object itself as invalid: 422 on its create. A 400 (an admission webhook's denial unless it says
otherwise, a malformed body), 403, 404 or an error on what goes with the object are the cluster's: plain refusals.
"""

from __future__ import annotations

import asyncio

import pytest
from test_kube_backend import SPEC, RefusingApi, backend, placement

from federator.agent.backend import Invalid
from federator.backends.kube.api import ForbiddenError, InvalidError, KubeError, NotFoundError
from federator.backends.kube.placement_launch import invalid_object
from federator.backends.kube.workloads import build_workload

CAUSE = ('spec.template.spec.containers[0].ports[0].name: Invalid value: "metrics-exporter-port": must be no more '
         "than 15 characters")


def test_a_422_on_the_objects_create_is_an_invalid_refusal_in_the_api_servers_words() -> None:
    name = build_workload(placement(), SPEC, namespace="w")["metadata"]["name"]
    b, _ = backend(RefusingApi(InvalidError(422, f'Job.batch "{name}" is invalid: {CAUSE}', reason="Invalid")))
    why = asyncio.run(b.launch(placement(), SPEC))
    assert isinstance(why, Invalid)
    assert why == f"the member cluster refused the Job: {CAUSE} (HTTP 422 Invalid; w/{name})"


@pytest.mark.parametrize("error", [
    InvalidError(400, 'admission webhook "policy.example.com" denied the request: images must come from our registry',
                 reason="BadRequest"),
    ForbiddenError(403, 'jobs "x" is forbidden: exceeded quota: gpu', reason="Forbidden"),
    NotFoundError(404, 'namespaces "w" not found', reason="NotFound"),
    KubeError(500, "etcdserver: request timed out", reason="InternalError"),
], ids=["400-webhook", "403-quota", "404-namespace", "500"])
def test_the_clusters_own_refusals_are_not_invalid(error: KubeError) -> None:
    assert not invalid_object(error)
    if isinstance(error, InvalidError | ForbiddenError | NotFoundError):  # a 5xx is raised: the agent's "launch failed"
        b, _ = backend(RefusingApi(error))
        why = asyncio.run(b.launch(placement(), SPEC))
        assert why is not None and not isinstance(why, Invalid)
