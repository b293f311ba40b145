"""A FederatedJob's spec.failurePolicy against a real API server (the test bed's host) with the chart's CRD: the
field accepted and kept, a bad value refused naming it, the field immutable; a member's Failed report places the
job again, status.pendingReason FailedRestarting and status.failureRestarts written, and a new federator (a
restart, a new leader) reads the spent count back, granting no restart twice (server/failure_restarts.py).

The federator runs in this process (store, controller with its informer); its members are reported to it
directly, as the server tests do.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from federator.backends.kube.api import FEDERATED_JOBS
from federator.model import JobPhase, ReasonCode
from federator.server.early_failures import EarlyFailurePolicy

from kube_support import Testbed, controller_running, fj_yaml, host_bed
from support import accepted, until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "failure-restarts"
NCCL = "NCCL watchdog timeout: rank 3 (exit 1)"
host = host_bed(NAMESPACE)


def _status(fx: Any, name: str) -> dict[str, Any]:
    return dict(fx.api.get(FEDERATED_JOBS, name, NAMESPACE).get("status") or {})


def test_a_bad_max_restarts_is_refused_by_the_api_server_naming_the_field(host: Testbed) -> None:
    for bad in (101, -1):
        refused = host.kubectl("host", "apply", "-f", "-", input=fj_yaml("bad", NAMESPACE,
                                                                          failurePolicy={"maxRestarts": bad}),
                               check=False)
        assert refused.returncode != 0
        assert "spec.failurePolicy.maxRestarts" in refused.stderr, refused.stderr


def test_a_failed_federatedjob_is_placed_again_and_a_new_federator_keeps_the_spent_count(host: Testbed) -> None:
    def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> Any:
        return host.kubectl("host", *args, "-n", NAMESPACE, input=stdin, check=check)

    async def first() -> str:
        async with controller_running(host, NAMESPACE) as fx:
            fx.fed.early.policy = EarlyFailurePolicy(seconds=0)  # every failure here is late (no clock to turn)
            fx.join("east-1")
            fx.join("west-1")
            kubectl("apply", "-f", "-", stdin=fj_yaml("pretrain", NAMESPACE, failurePolicy={"maxRestarts": 1}))
            await accepted(fx.fed, NAMESPACE, "pretrain")
            job = fx.fed.get("pretrain")
            assert job.spec.failure_policy.max_restarts == 1  # the CRD kept the field; the controller read it

            changed = kubectl("patch", "fj", "pretrain", "--type=merge", "-p",
                              json.dumps({"spec": {"failurePolicy": {"maxRestarts": 5}}}), check=False)
            assert changed.returncode != 0
            assert "spec.failurePolicy: is immutable" in changed.stderr, changed.stderr

            fx.fed.schedule_once()
            (p,) = job.placements
            rec = fx.fed.clusters[p.cluster]
            fx.fed.acked(rec, p.placement_id)
            fx.fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
            fx.fed.job_update(rec, p.placement_id, JobPhase.FAILED, NCCL)
            assert job.phase is JobPhase.PENDING and job.failure_restarts == 1
            assert job.pending_reason is not None and job.pending_reason.code is ReasonCode.FAILED_RESTARTING
            await until(lambda: _status(fx, "pretrain").get("failureRestarts") == 1)
            status = _status(fx, "pretrain")
            assert status["phase"] == "Pending" and status["restarts"] == 1
            assert status["pendingReason"]["code"] == "FailedRestarting"
            assert status["lastRestart"]["code"] == "FailedRestarting"
            fx.fed.schedule_once()
            (again,) = job.placements
            assert again.cluster != p.cluster  # elsewhere first
            await until(lambda: _status(fx, "pretrain").get("phase") == "Placed")
            return again.cluster

    placed_on = asyncio.run(first())

    async def second() -> None:
        async with controller_running(host, NAMESPACE) as fx:  # a restart, or a new leader
            fx.fed.early.policy = EarlyFailurePolicy(seconds=0)
            job = fx.fed.get("pretrain")
            assert job.failure_restarts == 1 and job.restarts == 1  # read back from the status
            rec = fx.join(placed_on)
            (p,) = job.placements
            fx.fed.acked(rec, p.placement_id)
            fx.fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")
            fx.fed.job_update(rec, p.placement_id, JobPhase.FAILED, NCCL)
            assert job.phase is JobPhase.FAILED  # its one restart was spent before the restart
            assert "restarted 1 of 1 times on failure" in job.message
            await until(lambda: _status(fx, "pretrain").get("phase") == "Failed")

    asyncio.run(second())
