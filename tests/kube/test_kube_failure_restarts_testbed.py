"""spec.failurePolicy end to end on the real test bed: `federator serve` and a `federator agent` per member as real
processes, kwok pods whose container exits 1, a job of 8 H100 or A100 (member-a has the one, member-b the other).
The member's agent reports the placement Failed, the federator places the job again (on the other member: the one
it failed on is avoided), that run fails too, and with its one restart spent the FederatedJob ends Failed, its
status counting the restart (server/failure_restarts.py; outside migration QA, M12). Its own test bed: the serve
takes --early-failure-seconds 0, so a crash 5 s in is a failure the budget answers, not the early rule's free
once-more placement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, Kube, federation, own_bed, ready_members
from support import eventually

try:
    from tests.testbed.testbed import DELAY_ANNOTATION, FAIL_ANNOTATION
except ImportError:  # kube_support put tests/testbed on sys.path
    from testbed import DELAY_ANNOTATION, FAIL_ANNOTATION  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    work = tmp_path_factory.mktemp("kube-failure-restarts")
    with own_bed(work / "bed") as bed, federation(bed, work, "--early-failure-seconds", "0") as k:
        eventually(lambda: ready_members(k) == sorted(bed.members), timeout=90, what="both members Ready")
        yield k


def _job(name: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "replicas": 1, "resources": {"nvidia.com/gpu": 8, "cpu": "2"},
                 "acceleratorModels": ["H100", "A100"], "failurePolicy": {"maxRestarts": 1},
                 "template": {"metadata": {"annotations": {FAIL_ANNOTATION: "true", DELAY_ANNOTATION: "5s"}}}}})


def _status(fed: Kube, name: str) -> dict[str, Any]:
    return dict((fed.fj(name) or {}).get("status") or {})


def test_a_failed_job_is_placed_again_on_the_other_member_then_fails_with_its_restart_spent(fed: Kube) -> None:
    fed.kubectl("host", "apply", "-f", "-", input=_job("crashy"))
    try:
        eventually(lambda: _status(fed, "crashy").get("phase") == "Failed", timeout=300,
                   what=lambda: f"crashy Failed (status {_status(fed, 'crashy')})\n{fed.logs()}")
        status = _status(fed, "crashy")
        assert status["failureRestarts"] == 1 and status["restarts"] == 1, status
        assert status["lastRestart"]["code"] == "FailedRestarting", status
        assert "restart 1 of 1 on failure, spec.failurePolicy.maxRestarts" in status["lastRestart"]["message"]
        first = status["lastRestart"]["message"].split("failed on ", 1)[1].split(" ", 1)[0]
        assert status["message"].endswith("(not placed again: restarted 1 of 1 times on failure, "
                                          "spec.failurePolicy.maxRestarts)"), status["message"]
        last = [placement["cluster"] for placement in status["placements"]]
        assert first in ("member-a", "member-b") and last == [({"member-a", "member-b"} - {first}).pop()], \
            (first, last)  # elsewhere first: the restart ran on the member it had not failed on
    finally:
        fed.kubectl("host", "delete", "fj", "crashy", "--timeout=60s", check=False)
