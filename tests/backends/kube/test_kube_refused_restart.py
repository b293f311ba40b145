"""A FederatedJob the federator refused stays refused across a federator restart or failover.

Outside QA F15 (test bed): `acceleratorModels: [H1000]` was refused (Failed, an Invalid Event); after a restart the
controller judged the object again at once, before any member had reported, when an unknown model is only a
warning ("accepted because not every member cluster has reported"): the object flipped Failed -> Pending and
waited for ever, counted against its queue. One the parser refuses (`nvidia.com/gpus`) stayed Failed but was
refused again, with a WARNING, at every start. A refusal holds for the spec it judged now: its status says so, and
a federator that starts leaves it alone (a corrected spec, a newer generation, is judged again). An object no
federator judged yet is still judged (and, so early, admitted with the warning), as before.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import pytest
from test_kube_cancel_kept import HostApi

from federator.backends.kube.api import FEDERATED_JOBS
from federator.model import JobPhase

from builders import cluster, pool
from kube_fakes import Events, controller, federated_job

H100 = "NVIDIA-H100-80GB-HBM3"
TYPO_MODEL = {"kind": "training", "replicas": 2, "resources": {"cpu": "1", "nvidia.com/gpu": 8},
              "acceleratorModels": ["H1000"]}
TYPO_RESOURCE = {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpus": 8}}
TYPO_SCALED = {"kind": "inference", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 1},
               "acceleratorModels": ["H1000"]}


def _status(api: HostApi, name: str) -> dict[str, Any]:
    return dict(api.objects[("research", name)].get("status") or {})


async def _refuse_with_the_fleet_known(api: HostApi) -> dict[str, dict[str, Any]]:
    """A federator whose member has reported refuses the typos: Failed, naming the field. Their statuses."""
    async with controller(api) as (fed, ctl):
        await ctl.adopt_members()
        rec = fed.connect(cluster="member-a", region="east", labels={})
        fed.report(rec, cluster("member-a", "east", pool(H100, nodes=2, free=8)).capacity)
        await ctl.write_members()  # its MemberCluster: the next federator expects member-a
        for name, spec in (("typo-model", TYPO_MODEL), ("typo-res", TYPO_RESOURCE), ("typo-scaled", TYPO_SCALED)):
            await ctl.reconcile("ADDED", federated_job(api, name, spec))
        assert not fed.jobs
    statuses = {name: _status(api, name) for name in ("typo-model", "typo-res", "typo-scaled")}
    assert all(s["phase"] == "Failed" for s in statuses.values()), statuses
    assert "spec.acceleratorModels[0]: unknown accelerator model 'H1000'" in statuses["typo-model"]["message"]
    assert "spec.resources.nvidia.com/gpus: is not a known resource" in statuses["typo-res"]["message"]
    return statuses


def test_a_refused_federatedjob_is_left_alone_by_a_federator_that_starts_before_its_members_report(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        api = HostApi()
        before = await _refuse_with_the_fleet_known(api)
        caplog.clear()

        async with controller(api) as (fed, ctl):  # restarted: a helm upgrade, a failover
            await ctl.adopt_members()
            assert not fed.intake.fleet_settled()  # member-a expected, not reported: unknown models only warn
            writes = api.writes
            for listed in api.list(FEDERATED_JOBS)["items"]:  # the informer's first list, as ADDED events
                await ctl.reconcile("ADDED", copy.deepcopy(listed))
                await ctl.reconcile("MODIFIED", copy.deepcopy(listed))  # and a resync of each: still nothing
            assert not fed.jobs, [j.job_id for j in fed.jobs.values()]
            assert api.writes == writes  # no status written, no finalizer touched
            assert {name: _status(api, name) for name in before} == before  # still Failed, in the first words
            refusals = [r.getMessage() for r in caplog.records
                        if r.levelno >= logging.WARNING and "refused" in r.getMessage()]
            assert refusals == []  # not judged, nor said, again

            # A FederatedJob no federator judged yet (made while none ran) is judged: this early, with the
            # warning that the fleet is not all known; it is not a refusal's revival.
            await ctl.reconcile("ADDED", federated_job(api, "new-typo", TYPO_MODEL))
            job = fed.get("new-typo")
            assert job.phase is JobPhase.PENDING and _status(api, "new-typo")["jobId"] == job.job_id

    asyncio.run(main())


def test_a_scale_of_a_refused_federatedjob_is_a_new_spec_judged_once_across_restarts() -> None:
    """`kubectl scale` of a refused inference job changes its spec, as a corrected spec applied over it does (the
    CRD lets the spec of a job that never ran change, outside QA G3): the new generation is judged as a new object
    is, here refused again (the typo is still there), said once (not again for a stale copy of the event), and a
    federator that starts later leaves that generation alone."""
    async def main() -> None:
        api = HostApi()
        events = Events()
        async with controller(api, events=events) as (fed, ctl):
            await ctl.adopt_members()
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, cluster("member-a", "east", pool(H100, nodes=2, free=8)).capacity)
            await ctl.write_members()
            await ctl.reconcile("ADDED", federated_job(api, "typo-scaled", TYPO_SCALED))
            api.patch(FEDERATED_JOBS, "typo-scaled", {"spec": {"replicas": 3}}, "research")
            scaled = copy.deepcopy(api.objects[("research", "typo-scaled")])
            assert scaled["metadata"]["generation"] == 2
            await ctl.reconcile("MODIFIED", scaled)
            await ctl.reconcile("MODIFIED", copy.deepcopy(scaled))  # a stale copy: not judged twice
            assert not fed.jobs
            status = _status(api, "typo-scaled")
            assert (status["phase"], status["observedGeneration"]) == ("Failed", 2)
            assert [reason for _, reason, _ in events.said()] == ["Invalid", "Invalid"]  # generations 1 and 2

        events = Events()
        async with controller(api, events=events) as (fed, ctl):  # restarted: that generation is judged already
            await ctl.adopt_members()
            for listed in api.list(FEDERATED_JOBS)["items"]:
                await ctl.reconcile("ADDED", copy.deepcopy(listed))
            assert not fed.jobs and events.said() == []

            # scaled again while member-a has not reported to this federator: the new spec waits for its report (so
            # early an unknown model is a mere warning, and it would become a job for ever Pending: outside QA F15)
            api.patch(FEDERATED_JOBS, "typo-scaled", {"spec": {"replicas": 4}}, "research")
            await ctl.reconcile("MODIFIED", copy.deepcopy(api.objects[("research", "typo-scaled")]))
            assert not fed.jobs and _status(api, "typo-scaled")["observedGeneration"] == 2
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, cluster("member-a", "east", pool(H100, nodes=2, free=8)).capacity)
            await ctl.reconcile("MODIFIED", copy.deepcopy(api.objects[("research", "typo-scaled")]))
            assert not fed.jobs and _status(api, "typo-scaled")["observedGeneration"] == 3
            assert [reason for _, reason, _ in events.said()] == ["Invalid"]

    asyncio.run(main())
