"""A job whose pods finish while its agent process is stopped is billed to the pods' finishedAt, on a real member.

Billing QA F9, end to end on the test bed: the agent dates a placement's end by the workload (the pods' last
`finishedAt`, the failing container's for a failed gang; backends/kube/workload_ends.py), not by when it observed
the end (agent/ended.py `contact_end`). Here kwok finishes the pods (the delay annotation, the fail annotation) and
writes their containers' `finishedAt` while member-a's `federator agent` process is SIGSTOPped, and the agent is
resumed well after: the usage record the real `federator serve` keeps (its --db) must end at the pods' finishedAt,
within the second Kubernetes writes times to and the estimate's transit, not at the resume. The unit tests
(tests/backends/kube/test_kube_workload_ends.py) cover the order of what dates an end with fakes; this one is the
real path: the member's watch after a pause, the stream's re-sync, the federator's clamp and the usage meter.
"""

from __future__ import annotations

import time

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, Kube, agent_stopped, pods_finished, usage_record
from support import eventually

try:
    from tests.testbed.testbed import DELAY_ANNOTATION, FAIL_ANNOTATION
except ImportError:  # kube_support put tests/testbed on sys.path
    from testbed import DELAY_ANNOTATION, FAIL_ANNOTATION  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

RUN = "8s"  # how long kwok runs each pod: long enough to stop the agent after it said Running
PAST_END = 12.0  # how long the agent stays stopped after the pods finished: well past any rounding of the end
SLACK = 2.0  # finishedAt is to the second, and the agent's estimate of the federator's clock errs by the transit


def _job(name: str, replicas: int, annotations: dict[str, str]) -> str:
    """`replicas` x 8 H100 (member-a's alone), never placed again once ended (`failover: keep`)."""
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE, "annotations": {"federator.io/failover": "keep"}},
        "spec": {"kind": "training", "replicas": replicas, "resources": {"nvidia.com/gpu": 8, "cpu": "1"},
                 "acceleratorModels": ["H100"], "template": {"metadata": {"annotations": annotations}}}})


def _run_with_agent_stopped(kube: Kube, name: str, replicas: int, annotations: dict[str, str],
                            final: str) -> tuple[list[tuple[str, float]], float, tuple[float, float | None]]:
    """Run the job; stop member-a's agent once it is Running and resume it PAST_END after its pods finished.
    (every container's (reason, finishedAt), the resume's unix time, the placement's usage record)."""
    kube.kubectl("host", "apply", "-f", "-", input=_job(name, replicas, annotations))
    try:
        eventually(lambda: kube.phase(name) == "Running", timeout=120, what=lambda: f"{name} Running\n{kube.logs()}")
        pid = str(kube.fj(name)["status"]["placementId"])  # type: ignore[index]
        eventually(lambda: usage_record(kube.fed.workdir, pid), timeout=30, what="its usage record opened")
        with agent_stopped(kube, "member-a"):
            assert pods_finished(kube, "member-a", pid) is None, \
                "the pods finished before the agent was stopped: RUN is too short"
            finished = eventually(lambda: pods_finished(kube, "member-a", pid), timeout=60,
                                  what="the pods' finishedAt")
            time.sleep(PAST_END)
            resumed = time.time()
        eventually(lambda: kube.phase(name) == final, timeout=120, what=lambda: f"{name} {final}\n{kube.logs()}")
        record = eventually(lambda: (r := usage_record(kube.fed.workdir, pid)) and r[1] is not None and r, timeout=30,
                            what="its usage record closed")
        return finished, resumed, record
    finally:
        kube.kubectl("host", "delete", "fj", name, "-n", JOBS_NAMESPACE, "--wait=false", check=False)


def test_a_job_that_completes_while_its_agent_is_stopped_is_billed_to_its_pods_finished_at(kube: Kube) -> None:
    finished, resumed, (start, end) = _run_with_agent_stopped(kube, "paused-agent-done", 1, {DELAY_ANNOTATION: RUN},
                                                              "Succeeded")
    assert {reason for reason, _ in finished} == {"Completed"}
    last = max(at for _, at in finished)
    assert end is not None and last - SLACK <= end <= last + SLACK, (end - last, resumed - last)
    assert start < end < resumed - PAST_END / 2


def test_a_gang_that_fails_while_its_agent_is_stopped_is_billed_to_the_failing_containers_finished_at(
        kube: Kube) -> None:
    finished, resumed, (start, end) = _run_with_agent_stopped(
        kube, "paused-agent-fail", 2, {DELAY_ANNOTATION: RUN, FAIL_ANNOTATION: "true"}, "Failed")
    failing = [at for reason, at in finished if reason == "Error"]
    assert failing, finished
    first = min(failing)
    assert end is not None and first - SLACK <= end <= first + SLACK, (end - first, resumed - first)
    assert start < end < resumed - PAST_END / 2

