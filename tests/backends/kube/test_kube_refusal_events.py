"""A FederatedJob the federator refuses gets a Warning Event `Invalid` naming the field, besides its status
(backends/kube/controller.py). Before, only a tenancy refusal (QueueNotAllowed) had an Event: `kubectl get
events` and `kubectl describe fj` said nothing of a bad spec, the commonest refusal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from federator.backends.kube.api import FEDERATED_JOBS
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.resources import FINALIZER
from federator.backends.kube.store import KubeJobStore
from federator.server.federator import Federator

from kube_fakes import Events, FlakyApi

PRIVILEGED = {"spec": {"containers": [{"name": "main", "image": "llm:1", "securityContext": {"privileged": True}}]}}


@pytest.mark.parametrize(("spec", "message"), [
    ({"kind": "training", "replicas": 0, "resources": {"cpu": "1"}},
     "FederatedJob research/pretrain: spec.replicas: must come to an integer from 1 to 10000 replicas, got 0"),
    ({"kind": "training", "resources": {"cpu": "1"}, "template": PRIVILEGED},
     'spec.template.spec.containers[0].securityContext.privileged: not allowed under pod security "baseline"'),
], ids=["bad-spec", "pod-security"])
def test_a_refused_federatedjob_gets_a_warning_event_invalid_naming_the_field(spec: dict[str, Any],
                                                                             message: str) -> None:
    async def main() -> None:
        api = FlakyApi()
        events = Events()
        store = KubeJobStore(api, events=events)  # type: ignore[arg-type]
        fed = Federator(store=store)
        ctl = FederatedJobController(fed, api, store)  # type: ignore[arg-type]
        obj = api.create(FEDERATED_JOBS, {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                          "metadata": {"name": "pretrain", "finalizers": [FINALIZER]},
                                          "spec": spec}, "research")
        await ctl.reconcile("ADDED", obj)
        assert not fed.jobs
        status = api.objects[("research", "pretrain")]["status"]
        assert (status["phase"], status["message"]) == ("Failed", message)
        assert status["conditions"][0]["reason"] == "Invalid"
        (event,) = events.posted
        assert (event["type"], event["reason"], event["message"]) == ("Warning", "Invalid", message)
        assert event["involvedObject"]["uid"] == obj["metadata"]["uid"]
        await ctl.reconcile("MODIFIED", api.objects[("research", "pretrain")])
        assert len(events.posted) == 1  # refused once, said once

    asyncio.run(main())
