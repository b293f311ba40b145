"""A FederatedJob of the one-count form is refused naming `spec.acceleratorModels[N]`, the field its object wrote,
not the `spec.accelerators[N].model` the federator made of it (vendqa61 V3 in Kubernetes mode; the CLI said it
as written since, cli/written_form.py). Status, Event and the controller's log all say the written field."""

from __future__ import annotations

import asyncio
from typing import Any

from federator.backends.kube.api import FEDERATED_JOBS
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.resources import FINALIZER
from federator.backends.kube.store import KubeJobStore
from federator.server.federator import Federator

from kube_fakes import Events, FlakyApi


def _refused(spec: dict[str, Any]) -> str:
    async def main() -> str:
        api = FlakyApi()
        events = Events()
        store = KubeJobStore(api, events=events)  # type: ignore[arg-type]
        fed = Federator(store=store)
        ctl = FederatedJobController(fed, api, store)  # type: ignore[arg-type]
        obj = api.create(FEDERATED_JOBS, {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                          "metadata": {"name": "serve", "finalizers": [FINALIZER]},
                                          "spec": spec}, "research")
        await ctl.reconcile("ADDED", obj)
        assert not fed.jobs
        status = api.objects[("research", "serve")]["status"]
        (event,) = events.posted
        assert status["phase"] == "Failed" and event["message"] == status["message"]
        return str(status["message"])

    return asyncio.run(main())


def test_an_unknown_model_of_the_one_count_form_is_named_as_the_object_wrote_it() -> None:
    message = _refused({"kind": "inference", "resources": {"cpu": "1", "amd.com/gpu": 1},
                        "acceleratorModels": ["MI300X", "AMD-MI300X"]})
    assert message.startswith("spec.acceleratorModels[1]: unknown accelerator amd model 'AMD-MI300X'"), message
    assert "spec.accelerators[" not in message


def test_a_job_that_wrote_spec_accelerators_hears_that_field() -> None:
    message = _refused({"kind": "inference", "resources": {"cpu": "1"},
                        "accelerators": [{"model": "AMD-MI300X", "count": 1}]})
    assert message.startswith("spec.accelerators[0].model: unknown accelerator"), message
