"""A `kubectl apply` racing a gRPC Submit of the same name, on a real API server (the host of the test bed).

The federator runs in this process (store, controller with its informer), so the test can hold the store's
create of the Submit's FederatedJob while `kubectl apply` makes the user's object and the controller sees it
through a real watch; then the create meets the API server's own 409. tests/server/test_submit_kubectl_race.py
plays the same races on a fake, with the gRPC edge.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from federator.backends.kube.api import FEDERATED_JOBS, KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.store import KubeJobStore
from federator.jobfile import parse_job
from federator.server.federator import Federator
from federator.store.errors import NameTaken

from kube_support import Testbed, host_alone

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "name-race"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """A host control plane alone, with the CRDs."""
    with host_alone(tmp_path_factory.mktemp("name-race-bed"), NAMESPACE) as bed:
        yield bed


def document(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"kind": "training", "replicas": replicas, "resources": {"cpu": "1"}}}


def test_a_kubectl_apply_made_while_a_submits_create_is_on_its_way_is_admitted(host: Testbed) -> None:
    async def main() -> None:
        api = KubeApi.connect(host.host.kubeconfig)
        store = KubeJobStore(api, namespace=NAMESPACE)
        fed = Federator(store=store)
        ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE)
        await ctl.start()
        create = api.create
        held = threading.Event()

        def held_create(res: Any, body: dict[str, Any], namespace: str | None = None, *,
                        strict: bool = False) -> dict[str, Any]:
            if not held.is_set():  # the Submit's create: the user's object is made first, and watched
                held.set()
                host.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(document("pretrain", 2)))
                time.sleep(2)  # the controller has seen it (and, before, skipped it for good)
            return create(res, body, namespace, strict=strict)
        api.create = held_create  # type: ignore[method-assign]
        try:
            with pytest.raises(NameTaken) as refused:
                await fed.submit_async(parse_job(document("pretrain", 1)))
            assert "FederatedJob name-race/pretrain exists and is not this job's" in str(refused.value)
            for _ in range(100):
                status = api.get(FEDERATED_JOBS, "pretrain", NAMESPACE).get("status") or {}
                if status.get("jobId"):
                    break
                await asyncio.sleep(0.1)
            assert status.get("jobId"), f"the user's object was never admitted: {status}"
            (job,) = fed.list_jobs()
            assert job.job_id == status["jobId"] and job.spec.replicas == 2
        finally:
            await ctl.stop()
            store.close()
        # A federator that starts now rebuilds that one job from the object.
        assert list(Federator(store=KubeJobStore(api, namespace=NAMESPACE)).jobs) == [job.job_id]

    asyncio.run(main())
