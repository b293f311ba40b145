"""A FederatedJob created after the snapshot a host's state is restored from is gone after the restore while its gang
runs on (an orphan); its manifest applied again takes that gang back, not a second run beside it (server/reapplied.py;
outside QA, Kubernetes DR, K2). Another tenant's job of the same name and spec, in its own namespace, never does.

Real processes on the test bed, as a user runs them: member-a (2 x 8 H100) and its agent, which stays up. The restore
is made through the host's API server while no federator runs, as an etcd restore leaves it: the object is not there
(its finalizer removed by hand, then deleted). The federator watches every namespace (two tenants).
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator

import pytest

from kube_support import JOBS_NAMESPACE, LEASE_TIMES, Kube, usage_record
from one_member import fj_status, gang_job, member_jobs, one_member
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

NAME = "reapplied-gang"
OTHER = "team-b"  # another tenant's namespace


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    yield from one_member(tmp_path_factory, "reapplied", *LEASE_TIMES, watch=None)  # every namespace: two tenants


def _records(kube: Kube, job_id: str) -> int:
    db = sqlite3.connect(f"file:{kube.workdir / 'federator.db'}?mode=ro", uri=True, timeout=10)
    try:
        return int(db.execute("SELECT count(*) FROM usage WHERE job_id = ?", (job_id,)).fetchone()[0])
    finally:
        db.close()


def test_a_job_applied_again_after_a_restore_takes_back_its_running_gang(kube: Kube) -> None:
    eventually(lambda: (kube.json("host", "get", "mc", "member-a").get("status") or {}).get("state") == "Ready",
               timeout=120, what=lambda: f"member-a Ready\n{kube.logs()}")
    kube.kubectl("host", "apply", "-f", "-", input=gang_job(NAME, namespace=JOBS_NAMESPACE))
    eventually(lambda: kube.phase(NAME) == "Running", timeout=120, what=lambda: f"{NAME} Running\n{kube.logs()}")
    pid, job_id = str(fj_status(kube, NAME)["placementId"]), str(fj_status(kube, NAME)["jobId"])
    gang = member_jobs(kube)
    assert len(gang) == 1
    digest = kube.json("member-a", "get", "job", gang[0], "-n", "federator-workloads")["metadata"]["annotations"]
    assert str(digest.get("federator.io/job-digest", "")).startswith("v1:")  # kept on the member
    assert digest.get("federator.io/accelerator-model") == "NVIDIA-H100-80GB-HBM3"  # what it runs on, kept too

    kube.fed.server.stop(signal.SIGTERM)  # type: ignore[union-attr]
    # the restore of a snapshot taken before the object was made: it is not there
    kube.kubectl("host", "patch", "fj", NAME, "-n", JOBS_NAMESPACE, "--type=json", "-p",
                 '[{"op": "remove", "path": "/metadata/finalizers"}]')
    kube.kubectl("host", "delete", "fj", NAME, "-n", JOBS_NAMESPACE, "--wait=true")
    kube.fed.start_server(timeout=120)
    log = kube.fed.server.log  # type: ignore[union-attr]
    eventually(lambda: "of jobs this federator's store has no record of" in log.read_text(), timeout=120,
               what=lambda: f"the running gang held as an orphan\n{kube.logs()}")

    # another tenant applies the very manifest in its own namespace: a job of its own, Pending (member-a is full)
    kube.kubectl("host", "create", "namespace", OTHER)
    kube.kubectl("host", "apply", "-f", "-", input=gang_job(NAME, namespace=OTHER))
    other = eventually(lambda: (s := fj_status(kube, NAME, OTHER)).get("jobId") and s.get("phase") == "Pending" and s,
                       timeout=60,
                       what=lambda: f"{OTHER}/{NAME} Pending\n{fj_status(kube, NAME, OTHER)}\n{kube.logs()}")
    assert other["jobId"] != job_id and not other.get("placementId")
    assert "adopted" not in log.read_text() and member_jobs(kube) == gang

    # its owner applies it again (GitOps, or the runbook's step 5): it takes back its running gang
    kube.kubectl("host", "apply", "-f", "-", input=gang_job(NAME, namespace=JOBS_NAMESPACE))
    eventually(lambda: kube.phase(NAME) == "Running", timeout=120,
               what=lambda: f"{NAME} Running again\n{fj_status(kube, NAME)}\n{kube.logs()}")
    assert (fj_status(kube, NAME)["placementId"], fj_status(kube, NAME)["jobId"]) == (pid, job_id)
    assert member_jobs(kube) == gang  # nothing cancelled, nothing launched a second time
    assert "adopted as the job's placement" in log.read_text()
    assert "is booked on the first model" not in log.read_text()  # the agent said the model it runs on
    eventually(lambda: usage_record(kube.workdir, pid) is not None, timeout=60,
               what=lambda: f"a usage record of {pid}\n{kube.logs()}")
    assert _records(kube, job_id) == 1 and _records(kube, str(other["jobId"])) == 0  # billed once
    assert kube.phase(NAME, OTHER) == "Pending"
