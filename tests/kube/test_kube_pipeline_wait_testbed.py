"""What a pipeline and a GitOps tool wait on, against a real API server: `kubectl wait` on the FederatedJob's
conditions (Succeeded, Failed, Available) and spec.ttlSecondsAfterFinished deleting a finished object (outside QA
G2, G11, G13).

The federator runs in this process (store, controller), its member reported to it directly, as the deletion tests
do: what is tested is the host side, the status a real kube-apiserver keeps and kubectl reads, and the delete.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from federator.model import JobPhase
from federator.server.replica_counts import ReplicaCounts

from builders import cluster, pool
from kube_support import Testbed, controller_running, fj_yaml, host_alone
from support import accepted, until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "pipelines"
H100 = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with host_alone(tmp_path_factory.mktemp("pipeline-bed"), NAMESPACE) as bed:
        yield bed


def document(name: str, kind: str = "training", replicas: int = 1, **spec: Any) -> str:
    return fj_yaml(name, NAMESPACE, kind=kind, replicas=replicas, **spec)


def test_a_pipeline_waits_on_succeeded_or_failed_and_a_ttl_deletes_the_finished_object(host: Testbed) -> None:
    def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return host.kubectl("host", *args, "-n", NAMESPACE, input=stdin, check=check)

    async def wait(name: str, condition: str, timeout: str = "60s") -> subprocess.CompletedProcess[str]:
        """`kubectl wait`, off the loop the controller runs on."""
        return await asyncio.to_thread(kubectl, "wait", f"--for={condition}", f"fj/{name}", f"--timeout={timeout}",
                                       check=False)

    def conditions(name: str) -> dict[str, tuple[str, str]]:
        out = kubectl("get", "fj", name, "-o", "jsonpath={range .status.conditions[*]}{.type}={.status}={.reason}"
                                               "{\"\\n\"}{end}").stdout
        return {t: (s, r) for t, s, r in (line.split("=") for line in out.splitlines())}

    async def main() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            fed = fx.fed
            rec = fed.connect(cluster="a", region="east", labels={})
            fed.report(rec, cluster("a", "east", pool(H100, nodes=1, free=8)).capacity)

            # a run that succeeds: Succeeded is met, Failed is not (Finished alone was True for every end)
            kubectl("apply", "-f", "-", stdin=document("run-ok"))
            await accepted(fed, NAMESPACE, "run-ok")
            job = fed.get("run-ok")
            fed.schedule_once()
            (pid,) = [p.placement_id for p in job.placements]
            fed.job_update(rec, pid, JobPhase.RUNNING, "")
            # the TTL may be set on a running job (a new generation, nothing to do but observe it): its status says
            # so, else `kubectl wait` (which skips a condition of an older generation) and a health check never pass
            kubectl("patch", "fj", "run-ok", "--type=merge", "-p", '{"spec":{"ttlSecondsAfterFinished":3600}}')
            await until(lambda: kubectl("get", "fj", "run-ok", "-o", "jsonpath={.status.observedGeneration}"
                                        ).stdout == "2")
            fed.job_update(rec, pid, JobPhase.SUCCEEDED, "done")
            assert (await wait("run-ok", "condition=Succeeded")).returncode == 0
            assert conditions("run-ok")["Failed"] == ("False", "Succeeded")
            assert "Available" not in conditions("run-ok")  # a training job serves nothing

            # a cancelled run and a refused object have not succeeded: Failed is met, with the outcome as reason
            kubectl("apply", "-f", "-", stdin=document("run-cancelled", resources={"cpu": "1", "nvidia.com/gpu": 64}))
            await until(lambda: fed.jobs.named("run-cancelled"))
            fed.cancel(fed.get("run-cancelled").job_id)
            assert (await wait("run-cancelled", "condition=Failed")).returncode == 0
            assert conditions("run-cancelled")["Failed"] == ("True", "Cancelled")
            assert conditions("run-cancelled")["Succeeded"] == ("False", "Cancelled")
            kubectl("apply", "-f", "-", stdin=document("run-refused", resources={"cpu": "1", "nvidia.com/gpuu": 1}))
            assert (await wait("run-refused", "condition=Failed")).returncode == 0
            assert conditions("run-refused")["Succeeded"] == ("False", "Invalid")

            # spec.ttlSecondsAfterFinished: the API server refuses a negative one, naming the field; one set on a
            # finished object (it may change at any time, as a Job's) deletes it, finalizer and all
            proc = kubectl("apply", "-f", "-", stdin=document("run-ok", ttlSecondsAfterFinished=-1), check=False)
            assert proc.returncode != 0 and "spec.ttlSecondsAfterFinished" in proc.stderr, proc.stderr
            assert "run-ok" in kubectl("get", "fj", "run-ok").stdout  # still there: no default TTL
            kubectl("apply", "-f", "-", stdin=document("run-ok", ttlSecondsAfterFinished=0))
            kubectl("patch", "fj", "run-refused", "--type=merge", "-p", '{"spec":{"ttlSecondsAfterFinished":1}}')
            for name in ("run-ok", "run-refused"):
                assert (await wait(name, "delete")).returncode == 0
            assert "run-cancelled" in kubectl("get", "fj").stdout  # finished, but no TTL: kept
            await until(lambda: not fed.jobs.named("run-ok"))

    asyncio.run(main())


def test_an_inference_job_is_available_once_every_replica_is_ready(host: Testbed) -> None:
    """What a blue/green cut-over waits on before the old job is deleted: Running is True as soon as replicas
    run, Available once spec.replicas of them are ready (outside QA G11)."""
    def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return host.kubectl("host", *args, "-n", NAMESPACE, input=stdin, check=check)

    def available() -> str:
        return str(kubectl("get", "fj", "chat-v2", "-o",
                           "jsonpath={.status.conditions[?(@.type==\"Available\")].status}").stdout)

    async def main() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            fed = fx.fed
            rec = fed.connect(cluster="b", region="west", labels={})
            fed.report(rec, cluster("b", "west", pool(H100, nodes=1, free=8)).capacity)
            kubectl("apply", "-f", "-", stdin=document("chat-v2", "inference", 2))
            await accepted(fed, NAMESPACE, "chat-v2")
            job = fed.get("chat-v2")
            fed.schedule_once()
            pids = [p.placement_id for p in job.placements]
            for pid in pids:
                fed.job_update(rec, pid, JobPhase.RUNNING, "", counts=ReplicaCounts(running=2, ready=1))
            await until(lambda: available() == "False" and "Running" in kubectl("get", "fj", "chat-v2").stdout)
            for pid in pids:
                fed.job_update(rec, pid, JobPhase.RUNNING, "", counts=ReplicaCounts(running=2, ready=2))
            proc = await asyncio.to_thread(kubectl, "wait", "--for=condition=Available", "fj/chat-v2",
                                           "--timeout=60s", check=False)
            assert proc.returncode == 0, proc.stderr

    asyncio.run(main())
