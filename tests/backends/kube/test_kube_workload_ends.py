"""A Kubernetes member's final phase says when the workload ended as the member recorded it, not when the agent saw it.

Outside billing QA F9: the agent dated every end when its callback ran, so a job that ended while the agent was
paused (or its member's API slow to tell it) was billed to the agent's resume. The backend now says the workload's
end with the final phase (`ended_at`, the member's wall clock): a pod's finishedAt, a Job's completionTime
(backends/kube/workload_ends.py); the agent converts and bounds it (agent/ended.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from test_kube_backend import GAVE_UP, FakeApi, _Clock, _gang_pod_at, feed, gang_backend, gang_pod, job_obj

from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED, DELETED, MODIFIED
from federator.backends.kube.pod_faults import PodFault
from federator.backends.kube.workload_ends import pods_finished_at, recorded_end, workload_ended_at
from federator.model import JobPhase

FINISHED = "2026-12-05T05:00:07Z"  # when the crashed replica's container stopped, on the member's clock
COMPLETED = "2026-12-05T05:00:09Z"


def at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


Said = tuple[JobPhase, float | None]


def _said_backend(api: FakeApi) -> tuple[KubeBackend, list[Said]]:
    """A gang backend whose callback keeps each update's phase and `ended_at`."""
    b, _ = gang_backend(api, _Clock())
    said: list[Said] = []
    b._on_update = lambda _pid, phase, _msg, *, ended_at=None, **_: said.append((phase, ended_at))
    feed(b, b.jobs, ADDED, job_obj({}))
    feed(b, b.pods, ADDED, gang_pod("p0", "n0", "Running"))
    feed(b, b.pods, ADDED, gang_pod("p1", "n1", "Running"))
    assert said[-1] == (JobPhase.RUNNING, None)
    return b, said


def test_a_failed_gang_is_dated_by_its_crashed_pods_finished_at_not_by_when_the_agent_saw_it() -> None:
    """The pods read once the Job failed say when the container exited: that is the end the agent is told, whatever
    the time is now (hours after FINISHED here: an agent paused, or a member API that told it late)."""
    async def run() -> list[Said]:
        api = FakeApi()
        b, said = _said_backend(api)
        api.pods.append(_gang_pod_at("p1", "n1", phase="Failed", containerStatuses=[
            {"name": "main", "state": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": FINISHED}}}]))
        feed(b, b.pods, DELETED, _gang_pod_at("p1", "n1"))  # the watch's words: Running, as it left
        feed(b, b.jobs, MODIFIED, job_obj({"failed": 1, "conditions": [
            {**GAVE_UP, "lastTransitionTime": "2026-12-05T05:00:08Z"}]}))
        for _ in range(100):
            if said[-1][0].is_terminal:
                break
            await asyncio.sleep(0.05)
        await b.stop()
        return said

    assert asyncio.run(run())[-1] == (JobPhase.FAILED, at(FINISHED))


def test_a_completed_job_is_dated_by_its_completion_time() -> None:
    b, said = _said_backend(FakeApi())
    feed(b, b.pods, DELETED, gang_pod("p0", "n0", "Succeeded"))
    feed(b, b.pods, DELETED, gang_pod("p1", "n1", "Succeeded"))
    feed(b, b.jobs, MODIFIED, job_obj({"succeeded": 2, "completionTime": COMPLETED, "conditions": [
        {"type": "Complete", "status": "True", "lastTransitionTime": COMPLETED}]}))
    assert said[-1] == (JobPhase.SUCCEEDED, at(COMPLETED))


def test_a_workload_that_says_no_time_leaves_the_end_to_the_agent() -> None:
    b, said = _said_backend(FakeApi())
    feed(b, b.jobs, MODIFIED, job_obj({"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}))
    assert said[-1] == (JobPhase.SUCCEEDED, None)


def test_a_cancel_is_said_as_it_happens_with_no_time_of_the_members() -> None:
    async def run() -> list[Said]:
        b, said = _said_backend(FakeApi())
        await b.cancel("train-abc.g1.a")
        await b.stop()
        return said

    assert asyncio.run(run())[-1] == (JobPhase.CANCELLED, None)


def _pod(*finished: str | None) -> dict[str, Any]:
    return {"status": {"containerStatuses": [
        {"name": f"c{i}", "state": {"terminated": {"exitCode": 0, "finishedAt": f}} if f else {"running": {}}}
        for i, f in enumerate(finished)]}}


def test_the_pods_say_their_last_finish_only_when_every_container_stopped() -> None:
    assert pods_finished_at([_pod(FINISHED), _pod(COMPLETED)]) == at(COMPLETED)
    assert pods_finished_at([_pod(FINISHED), _pod(None)]) is None  # a sidecar still runs: not over here
    assert pods_finished_at([{"status": {}}]) is None
    assert pods_finished_at([]) is None


def test_the_order_a_fault_then_the_pods_then_the_workloads_record() -> None:
    job = {"status": {"conditions": [{"type": "Completed", "status": "True", "lastTransitionTime": COMPLETED},
                                     {"type": "Failed", "status": "False", "lastTransitionTime": FINISHED}]}}
    assert recorded_end(job) == at(COMPLETED)  # a JobSet: its terminal condition turned True then
    assert recorded_end({"status": {"endTime": FINISHED}}) == at(FINISHED)  # a RayJob
    assert recorded_end({"status": {"completionTime": "not a time"}}) is None
    fault = PodFault(False, "pod p1 ... exited with code 1", at=at(FINISHED) - 1)
    assert workload_ended_at(job, [_pod(FINISHED)], fault) == at(FINISHED) - 1
    assert workload_ended_at(job, [_pod(FINISHED)], PodFault(False, "no time")) == at(FINISHED)
    assert workload_ended_at(job, [_pod(None)]) == at(COMPLETED)
