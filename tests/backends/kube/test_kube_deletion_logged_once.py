"""Kubernetes mode: one `kubectl delete` of a FederatedJob is said once in the federator's log.

Vendor QA vendqa61 V8: `FederatedJob default/amd-amdqb deleted: job amd-amdqb-0a06a6 is Cancelled` was logged 8
times within half a second, most deletions 3 times. Every event of a deleting object reconciles it and cancels its
job again (the deletionTimestamp, each status write of the cancel, the finalizer's removal, DELETED), and each
cancel said it (backends/kube/deletions.py). The cancel stays idempotent; the line is said once per object."""

from __future__ import annotations

import asyncio
import logging

import pytest

from federator.model import JobPhase

from kube_fakes import GANG, HostApi, controller, kubectl_delete, placed_on_member_a, room


@pytest.mark.parametrize("finished", [False, True])
def test_a_deleted_federatedjob_is_logged_once_however_many_events_its_deletion_makes(
        finished: bool, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        api = HostApi()
        async with controller(api) as (fed, ctl):
            rec, pid = await placed_on_member_a(api, fed, ctl, "amdqb", GANG, room())
            if finished:
                fed.job_update(rec, pid, JobPhase.SUCCEEDED, "done")
            job_id = fed.get("amdqb").job_id
            caplog.set_level(logging.INFO, logger="federator.kube.controller")
            await kubectl_delete(api, ctl, "amdqb")
            assert job_id not in fed.jobs
            said = [r.getMessage() for r in caplog.records if "deleted: job" in r.getMessage()]
            phase = "Succeeded" if finished else "Cancelled"
            assert said == [f"FederatedJob research/amdqb deleted: job {job_id} is {phase}"]

    asyncio.run(main())


def test_a_federatedjob_gone_while_no_federator_watched_is_said_and_not_kept_in_the_said_set(
        caplog: pytest.LogCaptureFixture) -> None:
    """Force-deleted while the federator was down, then it started (cancel_orphans): no event of the object comes,
    so no DELETED `forget` empties its entry of the said-once set; `cancel_orphans` does, or it stays for good."""
    async def main() -> None:
        api = HostApi()
        async with controller(api) as (fed, ctl):
            await placed_on_member_a(api, fed, ctl, "forced", GANG, room())
            job_id = fed.get("forced").job_id
            caplog.set_level(logging.INFO, logger="federator.kube.controller")
            api.objects.pop(("research", "forced"))  # its finalizer stripped and deleted: no watch saw it go
            await ctl.deletions.cancel_orphans([])  # the start's list finds no object of the job
            assert fed.get(job_id).phase is JobPhase.CANCELLED
            said = [r.getMessage() for r in caplog.records if "deleted: job" in r.getMessage()]
            assert said == [f"FederatedJob research/forced deleted: job {job_id} is Cancelled"]
            assert job_id not in ctl.deletions._said  # the leak: one entry per force-deleted job, for ever

    asyncio.run(main())
