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
import yaml

from federator.backends.kube.api import FEDERATED_JOBS
from federator.model import JobPhase, ReasonCode

from kube_support import Testbed, controller_running, host_bed
from support import until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "chains"
host = host_bed(NAMESPACE)


def document(name: str, **spec: Any) -> str:
    return yaml.safe_dump({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                           "metadata": {"name": name, "namespace": NAMESPACE},
                           "spec": {"kind": "training", "queue": "default",
                                    "resources": {"cpu": "1", "nvidia.com/gpu": 1}, **spec}})


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
            await until(lambda: fx.fed.jobs.named("prep") and fx.fed.jobs.named("train"))
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
