"""A FederatedJob's spec.dependsOn against a real API server (the test bed's host): the CRD the chart ships keeps
the field (an older one prunes it) and refuses a change to it; the job waits, Pending with reason Dependency, while
the FederatedJob it names by name runs, across a federator restart, and is placed once that one succeeds.

The federator runs in this process (store, controller with its informer); its member cluster is reported to it
directly, and so are the placements' ends, as the server tests do.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from federator.backends.kube.api import FEDERATED_JOBS
from federator.backends.kube.events import EventRecorder
from federator.model import JobPhase, ReasonCode

from kube_support import Testbed, controller_running, fj_yaml, host_bed
from support import accepted, until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "chains"
host = host_bed(NAMESPACE)


def document(name: str, **spec: Any) -> str:
    return fj_yaml(name, NAMESPACE, queue="default", **spec)


def test_spec_depends_on_keeps_a_federatedjob_waiting_until_the_one_it_names_succeeds(host: Testbed) -> None:
    def kubectl(*args: str, stdin: str | None = None) -> Any:
        return host.kubectl("host", *args, "-n", NAMESPACE, input=stdin)

    async def first() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            fx.join("east-1")  # one node of 8 free H100: room for both
            kubectl("apply", "-f", "-", stdin=document("prep"))
            await until(lambda: fx.fed.jobs.named("prep"))  # a name is resolved when the job naming it is made
            kubectl("apply", "-f", "-", stdin=document("train", dependsOn={"jobs": ["prep"]}))
            assert kubectl("get", "fj", "train", "-o", "json").stdout.count('"dependsOn"') == 1  # not pruned
            await accepted(fx.fed, NAMESPACE, "prep", "train")
            prep, train = fx.fed.get("prep"), fx.fed.get("train")
            assert train.spec.depends_on is not None and train.spec.depends_on.jobs == (prep.job_id,)
            fx.fed.schedule_once()
            assert prep.phase is JobPhase.PLACED and train.phase is JobPhase.PENDING
            assert train.pending_reason is not None and train.pending_reason.code is ReasonCode.DEPENDENCY
            await until(lambda: ((fx.api.get(FEDERATED_JOBS, "train", NAMESPACE).get("status") or {})
                                 .get("pendingReason") or {}).get("code") == "Dependency")
            patched = host.kubectl("host", "patch", "fj", "train", "-n", NAMESPACE, "--type=merge", "-p",
                                   json.dumps({"spec": {"dependsOn": {"jobs": ["other"]}}}), check=False)
            assert patched.returncode != 0 and "spec.dependsOn: is immutable" in patched.stderr  # as the spec is

    async def after_restart() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            rec = fx.join("east-1")
            prep, train = fx.fed.get("prep"), fx.fed.get("train")
            assert train.waiting_on == (prep.job_id,)  # judged again from the object's spec and prep's phase
            fx.fed.schedule_once()
            assert train.phase is JobPhase.PENDING
            for phase in (JobPhase.RUNNING, JobPhase.SUCCEEDED):
                fx.fed.job_update(rec, prep.placements[0].placement_id, phase, "exit 0")
            await until(lambda: not train.waiting_on)  # released when prep's end is announced, once stored
            assert prep.phase is JobPhase.SUCCEEDED
            fx.fed.schedule_once()
            assert train.phase is JobPhase.PLACED

    asyncio.run(first())
    asyncio.run(after_restart())


def test_a_pipeline_applied_in_reverse_order_waits_and_runs_and_a_cycle_or_a_typo_is_refused(host: Testbed) -> None:
    """GitOps applies a directory at once, in any order: a step read before the one it names is accepted waits
    (Pending, pendingReason Dependency, an Event), and is submitted once that one is; a name no FederatedJob has
    says so while it waits, and is refused past the bound; a cycle is refused at once, each of its objects."""
    def kubectl(*args: str, stdin: str | None = None) -> Any:
        return host.kubectl("host", *args, "-n", NAMESPACE, input=stdin)

    def status(name: str) -> dict[str, Any]:
        return dict(json.loads(kubectl("get", "fj", name, "-o", "json").stdout).get("status") or {})

    def reason(name: str) -> dict[str, Any]:
        return dict(status(name).get("pendingReason") or {})

    def events(name: str) -> list[dict[str, Any]]:
        listed = host.kubectl_json("host", "get", "events", "-n", NAMESPACE,
                                   "--field-selector", f"involvedObject.name={name},reason=Dependency")
        return list(listed["items"])

    async def scenario() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            fx.store.events = EventRecorder(fx.api)
            fx.join("east-1")
            # the last steps first, in one apply: report after train after step1
            kubectl("apply", "-f", "-", stdin=document("report", dependsOn={"condition": "afterany",
                                                                           "jobs": ["train2"]})
                    + "---\n" + document("train2", dependsOn={"jobs": ["step1"]}))
            await until(lambda: "which does not exist" in reason("train2").get("message", ""))
            assert reason("train2") == {
                "code": "Dependency", "message": "waiting for FederatedJob step1, which does not exist (refused if "
                                                 "none appears within 600s of this one's creation)"}
            await until(lambda: reason("report").get("message") == "waiting for FederatedJob train2 to be accepted")
            assert not fx.fed.jobs.named("train2") and not fx.fed.jobs.named("report")  # not submitted
            await until(lambda: bool(events("train2")))
            assert events("train2")[0]["type"] == "Warning"  # a name that names nothing: maybe a typo
            kubectl("apply", "-f", "-", stdin=document("step1"))
            await until(lambda: fx.fed.jobs.named("step1") and fx.fed.jobs.named("train2")
                        and fx.fed.jobs.named("report"))
            step1, train, report = fx.fed.get("step1"), fx.fed.get("train2"), fx.fed.get("report")
            assert train.spec.depends_on is not None and train.spec.depends_on.jobs == (step1.job_id,)
            assert report.spec.depends_on is not None and report.spec.depends_on.jobs == (train.job_id,)
            assert train.waiting_on == (step1.job_id,) and report.waiting_on == (train.job_id,)
            await until(lambda: status("report").get("jobId") == report.job_id)
            assert [e["type"] for e in events("report")] == ["Normal"]  # told once, as it waited on an object

            # a cycle: each of its objects refused, naming it
            kubectl("apply", "-f", "-", stdin=document("ping", dependsOn={"jobs": ["pong"]}) + "---\n"
                    + document("pong", dependsOn={"jobs": ["ping"]}))
            await until(lambda: status("ping").get("phase") == "Failed" and status("pong").get("phase") == "Failed")
            assert "spec.dependsOn.jobs: a cycle, " in status("ping")["message"]
            assert "none of them could ever run" in status("pong")["message"]
            kubectl("apply", "-f", "-", stdin=document("self", dependsOn={"jobs": ["self"]}))
            await until(lambda: status("self").get("phase") == "Failed")
            assert status("self")["message"].startswith("spec.dependsOn.jobs: a cycle, self -> self")

            # a typo: its spec may be corrected while it waits (the CRD lets it), else refused past the bound
            kubectl("apply", "-f", "-", stdin=document("fixed", dependsOn={"jobs": ["stepl"]}) + "---\n"
                    + document("typo", dependsOn={"jobs": ["stepl"]}))
            await until(lambda: reason("fixed").get("code") == "Dependency"
                        and reason("typo").get("code") == "Dependency")
            kubectl("apply", "-f", "-", stdin=document("fixed", dependsOn={"jobs": ["step1"]}))
            await until(lambda: fx.fed.jobs.named("fixed"))
            assert fx.fed.get("fixed").spec.depends_on.jobs == (step1.job_id,)  # type: ignore[union-attr]
            fx.ctl.chains.missing_seconds = 0.0  # the bound passed
            await until(lambda: status("typo").get("phase") == "Failed")
            assert status("typo")["message"].startswith(
                "spec.dependsOn.jobs: no FederatedJob 'stepl' in namespace chains appeared within 0s of this one's "
                "creation")
            assert not fx.fed.jobs.named("typo")
            assert fx.store.events is not None
            fx.store.events.close()

    asyncio.run(scenario())
