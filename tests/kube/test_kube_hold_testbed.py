"""A FederatedJob's spec.held against a real API server (the test bed's host): held from creation, released and
held with `kubectl patch`, a hold over the API written to the object, and a hold kept across a restart.

The CRD is the one the chart ships (its spec.held and status.hold are pruned by an API server whose CRD lacks
them, so the real one is what is tested). The federator runs in this process (store, controller with its
informer); its member cluster is reported to it directly, as the server tests do.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml

from federator.backends.kube.api import FEDERATED_JOBS
from federator.jobfile import parse_job
from federator.model import JobHold, JobPhase, Reason, ReasonCode
from federator.server.job_holds import Actor, hold_async

from kube_support import Testbed, controller_running, fj_yaml, host_bed
from support import accepted, until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "holding"
host = host_bed(NAMESPACE)


def document(name: str, **spec: Any) -> str:
    return fj_yaml(name, NAMESPACE, queue="default", **spec)


def test_spec_held_holds_and_releases_a_federatedjob_and_a_hold_survives_a_restart(host: Testbed) -> None:
    def kubectl(*args: str, stdin: str | None = None) -> Any:
        return host.kubectl("host", *args, "-n", NAMESPACE, input=stdin)

    def patch_held(name: str, held: bool) -> None:
        kubectl("patch", "fj", name, "--type=merge", "-p", json.dumps({"spec": {"held": held}}))

    def observed(fx: Any, name: str) -> bool:
        """The controller has read the object's newest generation (its status says it observed it)."""
        obj = fx.api.get(FEDERATED_JOBS, name, NAMESPACE)
        return bool((obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"])

    async def first() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            fx.join("east-1")  # one node of 8 free H100: room for every job here
            kubectl("apply", "-f", "-", stdin=document("step-2", held=True))
            await accepted(fx.fed, NAMESPACE, "step-2")
            job = fx.fed.get("step-2")
            assert job.hold is not None and job.hold.by == f"namespace {NAMESPACE}" and not job.hold.admin
            fx.fed.schedule_once()
            assert job.phase is JobPhase.PENDING and job.pending_reason is not None
            assert job.pending_reason.code is ReasonCode.HELD

            await until(lambda: (fx.api.get(FEDERATED_JOBS, "step-2", NAMESPACE).get("status") or {}).get("hold"))
            status = fx.api.get(FEDERATED_JOBS, "step-2", NAMESPACE)["status"]
            assert status["hold"]["by"] == f"namespace {NAMESPACE}" and status["pendingReason"]["code"] == "Held"
            wide = kubectl("get", "fj", "step-2", "-o", "wide").stdout.splitlines()
            assert "Held" in wide[1].split(), wide  # the REASON column
            plain = kubectl("get", "fj", "step-2").stdout.splitlines()  # held at a glance, without -o wide
            assert plain[0].split()[:4] == ["NAME", "QUEUE", "PHASE", "HELD"], plain
            assert plain[1].split()[:5] == ["step-2", "default", "Pending", "namespace", NAMESPACE], plain

            patch_held("step-2", False)  # released: placed by the next cycle
            await until(lambda: job.hold is None)
            fx.fed.schedule_once()
            assert job.phase is JobPhase.PLACED

            patch_held("step-2", True)  # a placed job is not held: it runs on, the object left as written
            await until(lambda: observed(fx, "step-2"))
            assert fx.api.get(FEDERATED_JOBS, "step-2", NAMESPACE)["spec"]["held"] is True
            assert job.phase is JobPhase.PLACED and job.hold is None
            # ...but the object says held: when the job waits again (a re-queue: its cluster lost, say), it is held
            # in the re-queue itself, before any cycle (Slurm's requeuehold), until spec.held goes back to false
            await until(lambda: job.job_id in fx.fed.wanted_holds)
            fx.fed.requeue(job, Reason(ReasonCode.WAITING, "its cluster was lost"))
            assert job.phase is JobPhase.PENDING and job.hold is not None
            assert job.hold.by == f"namespace {NAMESPACE}" and not job.hold.admin
            fx.fed.schedule_once()
            assert job.phase is JobPhase.PENDING and job.pending_reason is not None
            assert job.pending_reason.code is ReasonCode.HELD
            await until(lambda: ((fx.api.get(FEDERATED_JOBS, "step-2", NAMESPACE).get("status") or {}).get("hold")
                                 or {}).get("by") == f"namespace {NAMESPACE}")
            patch_held("step-2", False)
            await until(lambda: job.hold is None)
            fx.fed.schedule_once()
            assert job.phase is JobPhase.PLACED

            # A hold over the API (an admin's, of a job no user submitted) reaches the object's spec.held.
            kubectl("apply", "-f", "-", stdin=document("step-3"))
            await accepted(fx.fed, NAMESPACE, "step-3")
            later = fx.fed.get("step-3")
            await hold_async(fx.fed, later, Actor("admin", admin=True))  # what JobService.Hold runs
            assert fx.api.get(FEDERATED_JOBS, "step-3", NAMESPACE)["spec"]["held"] is True
            patch_held("step-3", False)  # kubectl does not release an admin's hold
            await until(lambda: observed(fx, "step-3"))
            assert later.hold is not None and later.hold.admin
            fx.fed.schedule_once()
            assert later.phase is JobPhase.PENDING

            # Submitted held over the API (SubmitRequest.hold): its FederatedJob is made with spec.held: true, and
            # the controller, reading it, finds no change to make.
            api_job = fx.fed.intake.submit(parse_job(yaml.safe_load(document("step-4"))), hold=JobHold("alice", 1.0))
            obj = fx.api.get(FEDERATED_JOBS, "step-4", NAMESPACE)
            assert obj["spec"]["held"] is True and obj["status"]["hold"]["by"] == "alice"
            await until(lambda: observed(fx, "step-4"))
            assert api_job.hold is not None and api_job.pending_reason is not None
            assert api_job.pending_reason.code is ReasonCode.HELD

    async def after_restart() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            fx.join("east-1")
            job = fx.fed.get("step-3")  # rebuilt from its FederatedJob's status
            assert job.hold is not None and job.hold.by == "admin" and job.hold.admin
            fx.fed.schedule_once()
            assert job.phase is JobPhase.PENDING and job.pending_reason is not None
            assert job.pending_reason.code is ReasonCode.HELD

    asyncio.run(first())
    asyncio.run(after_restart())


def test_a_federatedjob_cancelled_while_held_shows_no_hold_in_kubectl(host: Testbed) -> None:
    """A hold ends with its job: once a held job is cancelled, its status.hold is cleared, so `kubectl get fj` shows
    `Cancelled` with an empty HELD column (it showed who had held it, as if the ended job still were)."""
    def kubectl(*args: str) -> Any:
        return host.kubectl("host", *args, "-n", NAMESPACE)

    async def scenario() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            fx.join("east-1")
            host.kubectl("host", "apply", "-n", NAMESPACE, "-f", "-", input=document("held-end", held=True))
            await until(lambda: fx.fed.jobs.named("held-end"))
            job = fx.fed.get("held-end")
            await until(lambda: bool((fx.api.get(FEDERATED_JOBS, "held-end", NAMESPACE).get("status") or {})
                                     .get("hold")))
            fx.fed.cancel(job.job_id)  # what JobService.Cancel runs
            await until(lambda: (fx.api.get(FEDERATED_JOBS, "held-end", NAMESPACE).get("status") or {})
                        .get("phase") == "Cancelled")
            status = fx.api.get(FEDERATED_JOBS, "held-end", NAMESPACE)["status"]
            assert status.get("hold") is None, status
            row = kubectl("get", "fj", "held-end").stdout.splitlines()[1].split()
            assert row[:3] == ["held-end", "default", "Cancelled"] and "namespace" not in row, row
            assert job.hold is not None  # the federator's record of who held it (federator get job -o yaml)

    asyncio.run(scenario())
