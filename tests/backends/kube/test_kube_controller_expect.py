"""A FederatedJob the federator refuses leaves no expectation behind (`KubeJobStore.expect` / `unexpect`).

The controller tells the store that the next job of a name is its object's before it submits. When the submission
made no job (refused: the name held by an active job whose object was deleted by force, say), the expectation
stayed, and the next gRPC job of that name, hours later, took the user's refused object as its own and wrote its
status over it, where its create would have met 409 and been refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError
from federator.jobfile import parse_job
from federator.store.errors import NameTaken

from kube_fakes import FlakyApi, controller, federated_job

SPEC = {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}}
PRETRAIN = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": "pretrain", "namespace": "research"}, "spec": SPEC}


class UidApi(FlakyApi):
    """FlakyApi that holds a write to the precondition it carries, as an API server does."""

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        uid = (body.get("metadata") or {}).get("uid")
        if uid is not None and uid != self.objects[(str(namespace), name)]["metadata"]["uid"]:
            raise ConflictError(409, "Precondition failed: UID in precondition does not match", reason="Conflict")
        return super().patch(res, name, body, namespace, subresource=subresource)


def test_a_refused_federatedjob_is_not_taken_over_by_the_next_job_of_its_name() -> None:
    async def main() -> None:
        api = UidApi()
        async with controller(api) as (fed, ctl):
            first = await fed.submit_async(parse_job(PRETRAIN))
            del api.objects[("research", "pretrain")]  # its object deleted by force, finalizer and all
            users = federated_job(api, "pretrain", {**SPEC, "replicas": 2})
            await ctl.reconcile("ADDED", users)  # the name is the active job's: refused
            refused = api.get(FEDERATED_JOBS, "pretrain", "research")["status"]
            assert refused["phase"] == "Failed" and "already exists" in refused["message"]
            fed.cancel(first.job_id)
            with pytest.raises(NameTaken):  # its create meets the user's object
                await fed.submit_async(parse_job(PRETRAIN))
            assert api.get(FEDERATED_JOBS, "pretrain", "research")["status"] == refused  # not written over

    asyncio.run(main())
