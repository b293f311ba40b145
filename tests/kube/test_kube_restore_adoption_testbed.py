"""A FederatedJob released and started after the snapshot a host's state is restored from comes back Pending and held,
its gang running on as an orphan; releasing it again adopts that gang (server/adoption.py; outside QA, Kubernetes
DR, K8 and K3). Before, the job waited for the room its own gang held ("waiting for 16 of 16 ... to free") and the
gang was cancelled after --orphan-grace, its run thrown away.

Real processes on the test bed, as a user runs them: member-a (2 x 8 H100) and its agent. The restore is made through
the host's API server while no federator runs, as an etcd restore leaves the object: its spec (held: true) and its
status as they were at the snapshot (Pending, held, no placement), read then with kubectl. The agent stays up.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import pytest

from kube_support import JOBS_NAMESPACE, LEASE_TIMES, Kube
from one_member import fj_status, gang_job, member_jobs, one_member
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

NAME = "restored-gang"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    yield from one_member(tmp_path_factory, "restore-adoption", *LEASE_TIMES)


def _release(kube: Kube) -> None:
    kube.kubectl("host", "patch", "fj", NAME, "-n", JOBS_NAMESPACE, "--type=merge", "-p", '{"spec":{"held":false}}')


def test_a_release_undone_by_a_restore_adopts_the_running_gang_when_released_again(kube: Kube) -> None:
    eventually(lambda: (kube.json("host", "get", "mc", "member-a").get("status") or {}).get("state") == "Ready",
               timeout=120, what=lambda: f"member-a Ready\n{kube.logs()}")
    kube.kubectl("host", "apply", "-f", "-", input=gang_job(NAME, held=True))
    snapshot = eventually(lambda: (s := fj_status(kube, NAME)).get("jobId") and s.get("hold") and s, timeout=60,
                          what=lambda: f"{NAME} Pending and held\n{kube.logs()}")
    _release(kube)
    eventually(lambda: kube.phase(NAME) == "Running", timeout=120, what=lambda: f"{NAME} Running\n{kube.logs()}")
    pid = str(fj_status(kube, NAME)["placementId"])
    gang = member_jobs(kube)
    assert len(gang) == 1

    kube.fed.server.stop(signal.SIGTERM)  # type: ignore[union-attr]
    # the restore: the object as the snapshot had it, spec and status
    kube.kubectl("host", "patch", "fj", NAME, "-n", JOBS_NAMESPACE, "--type=merge", "-p", '{"spec":{"held":true}}')
    kube.kubectl("host", "patch", "fj", NAME, "-n", JOBS_NAMESPACE, "--subresource=status", "--type=json", "-p",
                 json.dumps([{"op": "replace", "path": "/status", "value": snapshot}]))
    assert fj_status(kube, NAME).get("phase") == "Pending" and not fj_status(kube, NAME).get("placementId")
    kube.fed.start_server(timeout=120)

    log = kube.fed.server.log  # type: ignore[union-attr]
    eventually(lambda: "runs 1 placement(s) newer than this federator's store" in log.read_text(), timeout=120,
               what=lambda: f"the running gang said newer than the store\n{kube.logs()}")
    assert "a release adopts this placement" in log.read_text()
    assert kube.phase(NAME) == "Pending" and member_jobs(kube) == gang  # held, as its restored spec says; runs on

    _release(kube)
    eventually(lambda: kube.phase(NAME) == "Running", timeout=120,
               what=lambda: f"{NAME} Running again\n{fj_status(kube, NAME)}\n{kube.logs()}")
    assert fj_status(kube, NAME)["placementId"] == pid  # its own gang, adopted
    assert member_jobs(kube) == gang  # nothing cancelled, nothing launched again
    assert "adopted as the job's placement" in log.read_text()
