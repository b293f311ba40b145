"""An RL pipeline split into FederatedJobs against a real API server (the test bed's host), applied at once by
kubectl: the rollout workers wait (dependsOn condition afterstart) until the learner runs, and are placed only on
the cluster the learner holds (spec.clusters.sameAs), of two members with room (outside QA qaml60 E3).

The chart's CRD keeps both (an older one prunes sameAs and refuses afterstart). The federator runs in this process
(store, controller with its informer); its member clusters are reported to it directly, and so is the learner's
Running report, as the other test-bed dependency tests do (test_kube_dependencies_testbed.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from federator.model import JobPhase, ReasonCode

from kube_support import Testbed, controller_running, fj_yaml, host_bed
from support import until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "rl"
host = host_bed(NAMESPACE)


def document(name: str, **spec: Any) -> str:
    return fj_yaml(name, NAMESPACE, queue="default", **spec)


def test_rollout_workers_start_after_the_learner_runs_and_only_beside_it(host: Testbed) -> None:
    def kubectl(*args: str, stdin: str | None = None) -> Any:
        return host.kubectl("host", *args, "-n", NAMESPACE, input=stdin)

    def reason(name: str) -> dict[str, Any]:
        got = json.loads(kubectl("get", "fj", name, "-o", "json").stdout)
        return dict((got.get("status") or {}).get("pendingReason") or {})

    async def scenario() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            fx.join("east-1")  # two members, each with one node of 8 free H100: room for both jobs on either
            west = fx.join("west-1")
            # one apply, the rollout first: it waits to be submitted until the learner it names is accepted
            kubectl("apply", "-f", "-", stdin=document(
                "rollout", kind="inference", replicas=2,
                clusters={"sameAs": ["learner"]}, dependsOn={"condition": "afterstart", "jobs": ["learner"]})
                + "---\n" + document("learner", resources={"cpu": "1", "nvidia.com/gpu": 4},
                                     clusters={"names": ["west-1"]}))
            spec = json.loads(kubectl("get", "fj", "rollout", "-o", "json").stdout)["spec"]
            assert spec["clusters"] == {"sameAs": ["learner"]}  # the CRD keeps it: not pruned
            assert spec["dependsOn"]["condition"] == "afterstart"
            await until(lambda: fx.fed.jobs.named("learner") and fx.fed.jobs.named("rollout"))
            learner, rollout = fx.fed.get("learner"), fx.fed.get("rollout")
            assert rollout.spec.clusters.same_as == (learner.job_id,)  # the name kept as the learner's id
            assert rollout.spec.depends_on is not None and rollout.spec.depends_on.jobs == (learner.job_id,)
            await until(lambda: (fx.fed.schedule_once(), learner.phase is JobPhase.PLACED)[1])  # once informed
            assert [p.cluster for p in learner.placements] == ["west-1"]
            assert rollout.phase is JobPhase.PENDING  # placed is not started
            assert rollout.pending_reason is not None and rollout.pending_reason.code is ReasonCode.DEPENDENCY
            assert rollout.pending_reason.message == f"waiting for afterstart: {learner.job_id} (Placed)"
            # status.pendingReason, as kubectl reads it, follows the learner's phase (new60b N9: it kept the one of
            # the rollout's acceptance, "(Placed)" while the learner was refused back to Pending)
            said = {"code": "Dependency", "message": f"waiting for afterstart: {learner.job_id} (Placed)"}
            await until(lambda: reason("rollout") == said)
            fx.fed.job_update(west, learner.placements[0].placement_id, JobPhase.RUNNING, "2/2 running")
            await until(lambda: not rollout.waiting_on)  # released once the learner's Running is announced
            await until(lambda: (fx.fed.schedule_once(), rollout.phase is JobPhase.PLACED)[1])
            assert {p.cluster for p in rollout.placements} == {"west-1"}  # beside the learner, not on east-1
            assert learner.phase is JobPhase.RUNNING

            # a rollout naming a job that holds no placement (a gang too big for either member) waits, saying so
            # (one apply, the rollout first, sameAs alone: it waits to be submitted until the learner is accepted)
            kubectl("apply", "-f", "-", stdin=document("stray", kind="inference", clusters={"sameAs": ["big-learner"]})
                    + "---\n" + document("big-learner", replicas=3, resources={"cpu": "1", "nvidia.com/gpu": 8}))
            await until(lambda: fx.fed.jobs.named("stray"))
            stray = fx.fed.get("stray")
            await until(lambda: (fx.fed.schedule_once(), stray.pending_reason is not None
                                 and stray.pending_reason.code is ReasonCode.CLUSTER_AFFINITY)[1])
            assert stray.phase is JobPhase.PENDING and stray.pending_reason is not None and not stray.placements
            big_id = fx.fed.get('big-learner').job_id
            assert f"job {big_id} holds no placement here (spec.clusters.sameAs; it holds none now)" \
                in stray.pending_reason.message  # never "yet": it may have ended (new60b N1)

            # the job it names ends (deleted): it will never hold a placement, so the rollout fails, and its status
            # says so (new60b N1: it waited Pending for ever, "it holds none yet")
            kubectl("delete", "fj", "big-learner", "--wait=false")

            def failed() -> bool:
                status = json.loads(kubectl("get", "fj", "stray", "-o", "json").stdout).get("status") or {}
                return status.get("phase") == "Failed" and str(status.get("message", "")).startswith(
                    f"DependencyNeverSatisfied: job {big_id} ")
            await until(failed)
            status = json.loads(kubectl("get", "fj", "stray", "-o", "json").stdout)["status"]
            assert "will never hold a placement to share (spec.clusters.sameAs[0])" in status["message"], status

    asyncio.run(scenario())
