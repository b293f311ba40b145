"""A job deleted while its member's agent is silent, then `federator serve --kubeconfig` SIGKILLed and started again:
the new process still awaits the member's word, and the usage record ends at the job's real end when the agent is
back, as a standalone federator's does (server/silent_cancels.py; the wait kept on the MemberCluster,
backends/kube/silent_cancels.py).

Before, Kubernetes mode kept that wait in memory only: the restart forgot it, and the record stayed at the deletion
for good, the tenant billed for the seconds the member ran nothing (and a usage window holding it read complete).

Real processes on the test bed, as a user runs them: member-a (1 x 8 H100) and its agent, the federator's --db the
same file across the restart (a volume). kwok ends the job's pod after RUN while the agent process is SIGSTOPped
(a VM pause); member-a goes Partitioned; the FederatedJob is deleted, which closes the record at the deletion and
awaits the member's word; the federator is SIGKILLed (no flush, no release of the Lease) and started again; the
agent resumed after that says when the pod finished, and the record ends there.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from federator.backends.kube.silent_cancels import ANNOTATION

from kube_support import (
    JOBS_NAMESPACE,
    LEASE_TIMES,
    Kube,
    agent_stopped,
    pods_finished,
    usage_record,
)
from one_member import gang_job, one_member
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

RUN = "8s"  # how long kwok runs the pod: long enough to stop the agent after it said Running
SLACK = 2.0  # finishedAt is to the second, and the agent's estimate of the federator's clock errs by the transit
NAME = "silent-cancel"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    yield from one_member(tmp_path_factory, "silent-cancel-restart", *LEASE_TIMES, nodes=1)


def _member(kube: Kube) -> dict[str, Any]:
    return dict(kube.json("host", "get", "mc", "member-a"))


def _awaited(kube: Kube) -> dict[str, float]:
    """The ends awaited of member-a, as its MemberCluster keeps them."""
    text = ((_member(kube).get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    return dict(json.loads(text)) if text else {}


def _log(kube: Kube) -> str:
    return kube.fed.server.log.read_text() if kube.fed.server else ""  # type: ignore[union-attr]


def test_a_job_deleted_on_a_silent_member_is_billed_to_its_end_after_a_sigkill(kube: Kube) -> None:
    eventually(lambda: (_member(kube).get("status") or {}).get("state") == "Ready", timeout=120,
               what=lambda: f"member-a Ready\n{kube.logs()}")
    kube.kubectl("host", "apply", "-f", "-", input=gang_job(NAME, replicas=1, run=RUN))
    eventually(lambda: kube.phase(NAME) == "Running", timeout=120, what=lambda: f"{NAME} Running\n{kube.logs()}")
    pid = str(kube.fj(NAME)["status"]["placementId"])  # type: ignore[index]
    eventually(lambda: usage_record(kube.fed.workdir, pid), timeout=30, what="its usage record opened")

    with agent_stopped(kube, "member-a"):
        assert pods_finished(kube, "member-a", pid) is None, "the pod finished before the agent stopped: raise RUN"
        ((_, finished),) = eventually(lambda: pods_finished(kube, "member-a", pid), timeout=60,
                                      what="the pod's finishedAt")
        eventually(lambda: (_member(kube).get("status") or {}).get("state") == "Partitioned", timeout=60,
                   what=lambda: f"member-a Partitioned: silent for a lease\n{kube.logs()}")
        time.sleep(max(0.0, finished + 3 * SLACK - time.time()))  # the deletion well past the pod's end
        deleted = time.time()
        kube.kubectl("host", "delete", "fj", NAME, "-n", JOBS_NAMESPACE, "--wait=true", "--timeout=60s")
        start, end = eventually(lambda: (r := usage_record(kube.fed.workdir, pid)) and r[1] is not None and r,
                                timeout=30, what="its usage record closed at the deletion")
        assert end is not None and end >= deleted - SLACK > finished  # for now: billed past the pod's end
        kept = eventually(lambda: _awaited(kube), timeout=30,
                          what=lambda: f"the end awaited kept on member-a's MemberCluster\n{kube.logs()}")
        # The record's end: the deletion (seconds from the pod's end), one reading of the clock for both (the meter
        # closes a cancelled job's record at its finished_at: accounting/meter.py), equal but for the annotation's
        # rounding to the microsecond. CI saw them 2 ms apart when the meter read the clock again.
        assert list(kept) == [pid] and abs(kept[pid] - end) <= 1e-6, (kept, end)

        kube.fed.server.stop(signal.SIGKILL)  # type: ignore[union-attr]  # no flush, no release of the Lease
        kube.fed.start_server(timeout=120)
        eventually(lambda: "their end awaited, read from the MemberClusters: member-a 1" in _log(kube), timeout=120,
                   what=lambda: f"the new process to read the end awaited\n{kube.logs()}")
        assert usage_record(kube.fed.workdir, pid) == (start, end)  # nothing has said otherwise yet

    # the agent is back: its re-sync says when the pod finished, and the record ends there, not at the deletion
    record = eventually(lambda: (r := usage_record(kube.fed.workdir, pid)) and r[1] is not None and r[1] < end and r,
                        timeout=120, what=lambda: f"its usage record ended before the deletion\n{kube.logs()}")
    assert record[0] == start
    assert finished - SLACK <= record[1] <= finished + SLACK, (record[1] - finished, end - finished)  # type: ignore
    eventually(lambda: not _awaited(kube), timeout=30, what="the end awaited no more on member-a's MemberCluster")
