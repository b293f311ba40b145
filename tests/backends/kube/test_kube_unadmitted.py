"""A FederatedJob that never became a job is open to a corrected spec (backends/kube/unadmitted.py): a GitOps tool
applies the fix over the refused object, and the federator judges the new generation (outside QA G3). Before, the
refusal was final for the object, and the CRD refused the fix ("spec is immutable")."""

from __future__ import annotations

import asyncio
from typing import Any

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError

from kube_fakes import Events, FlakyApi, controller, federated_job

NS = "research"


def test_a_refused_federatedjob_whose_spec_is_corrected_is_judged_again_and_admitted() -> None:
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, events=events) as (fed, ctl):
            obj = federated_job(api, "pretrain", {"kind": "training", "replicas": 0, "resources": {"cpu": "1"}},
                                namespace=NS)
            await ctl.reconcile("ADDED", obj)
            status = api.objects[(NS, "pretrain")]["status"]
            assert status["phase"] == "Failed" and "spec.replicas: must come" in status["message"] and not fed.jobs
            await ctl.reconcile("MODIFIED", api.objects[(NS, "pretrain")])  # its own status write: nothing new
            assert not fed.jobs and len(events.posted) == 1

            fixed = api.patch(FEDERATED_JOBS, "pretrain", {"spec": {"replicas": 2}}, NS)  # the fix, applied over it
            assert fixed["metadata"]["generation"] == 2
            await ctl.reconcile("MODIFIED", fixed)
            (job,) = fed.jobs.values()
            assert job.spec.replicas == 2
            assert ctl.store.owner_of(job.job_id).generation == 2  # type: ignore[union-attr]

    asyncio.run(main())


def test_a_refusal_holds_for_the_generation_it_judged_across_a_restart() -> None:
    """A federator that starts leaves a refused object alone (outside QA F15) as long as its spec is the one
    refused; a corrected spec it never judged (changed while no federator ran) is judged."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (_, ctl):
            for name in ("kept", "fixed"):
                await ctl.reconcile("ADDED", federated_job(api, name, {"kind": "training", "replicas": 0,
                                                                       "resources": {"cpu": "1"}}, namespace=NS))
        api.patch(FEDERATED_JOBS, "fixed", {"spec": {"replicas": 1}}, NS)
        writes = api.writes
        async with controller(api) as (fed, ctl):  # the next federator
            await ctl.reconcile("ADDED", api.objects[(NS, "kept")])
            assert not fed.jobs and api.writes == writes  # not judged, nothing written
            await ctl.reconcile("ADDED", api.objects[(NS, "fixed")])
            assert [j.spec.name for j in fed.jobs.values()] == ["fixed"]

    asyncio.run(main())


class RacingApi(FlakyApi):
    """The user's next change lands between the controller's read and its reopening write: the write's
    resourceVersion precondition fails, as on an API server."""

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        if subresource == "status" and "resourceVersion" in (body.get("metadata") or {}):
            raise ConflictError(409, "the object has been modified", reason="Conflict")
        return super().patch(res, name, body, namespace, subresource=subresource)


def test_a_spec_changed_while_it_is_judged_again_is_not_submitted_from_the_older_read() -> None:
    """The reopening write holds the spec still (the CRD lets it change no more) before the job is made of it; a
    change that came first fails that write, and the newer version's event is judged instead."""
    async def main() -> None:
        api = RacingApi()
        async with controller(api) as (fed, ctl):
            await ctl.reconcile("ADDED", federated_job(api, "pretrain", {"kind": "training", "replicas": 0,
                                                                         "resources": {"cpu": "1"}}, namespace=NS))
            fixed = api.patch(FEDERATED_JOBS, "pretrain", {"spec": {"replicas": 2}}, NS)
            await ctl.reconcile("MODIFIED", fixed)
            assert not fed.jobs and api.objects[(NS, "pretrain")]["status"]["phase"] == "Failed"

    asyncio.run(main())
