"""A deposed leader's stale status write is refused by the real API server (backends/kube/fencing.py).

Outside QA haqa63 FA: a leader paused past its Lease with status writes on their way, resumed, wrote them over
the new leader's (a Succeeded FederatedJob set back to "Placed ... not started", then launched again). Here two
replicas' stores share the test bed's host API server and a real Lease: replica A's writer is held in the middle of a
write (after its clock check passed, before the PATCH leaves: a paused thread, not a raced SIGSTOP) until replica B
has taken the expired Lease and written the job Succeeded. A's PATCH then carries the resourceVersion A last saw,
the API server answers 409, A reads the Lease (B's), drops the write and steps down: B's status stands.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.backends.kube.api import FEDERATED_JOBS, KubeApi
from federator.backends.kube.fencing import Deposed, Fence
from federator.backends.kube.leader import LeaderElector, LeaseConfig
from federator.backends.kube.resources import spec_of
from federator.backends.kube.store import KubeJobStore, Owner
from federator.model import Job, JobId, JobPhase

from kube_support import Testbed
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "fencing"
LEASE = "federator-fencing-test"


class HeldPatches:
    """The host API, with status PATCHes held before they leave while `hold` is set: a writer thread paused."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self.server = api.server
        self.hold = False
        self.waiting = threading.Event()  # a PATCH is held
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def patch(self, *args: Any, **kwargs: Any) -> Any:
        if self.hold and kwargs.get("subresource") == "status":
            self.waiting.set()
            self.release.wait(120)
        return self.api.patch(*args, **kwargs)


def _replica(api: Any, identity: str) -> tuple[LeaderElector, Fence, KubeJobStore]:
    cfg = LeaseConfig(namespace=NAMESPACE, name=LEASE, identity=identity, lease_duration=6.0, renew_deadline=5.0,
                      retry_period=1.0)
    elector = LeaderElector(api, cfg)
    fence = Fence(elector)
    return elector, fence, KubeJobStore(api, namespace=NAMESPACE, fence=fence)


def test_a_deposed_leaders_held_status_write_is_refused_and_the_new_leaders_status_kept(
        testbed: Testbed, tmp_path: Path) -> None:
    testbed.kubectl("host", "create", "namespace", NAMESPACE)
    testbed.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": "trained", "namespace": NAMESPACE},
        "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}}}))
    held = HeldPatches(KubeApi.connect(testbed.host.kubeconfig))
    elector_a, fence_a, store_a = _replica(held, "replica-a")
    lost_a: list[bool] = []
    fence_a.on_lost = lambda: lost_a.append(True)
    assert elector_a.try_acquire_or_renew()
    elector_a.leading = True
    obj = held.api.get(FEDERATED_JOBS, "trained", NAMESPACE)
    meta = obj["metadata"]
    store_a.expect(Owner(NAMESPACE, "trained", meta["uid"]))
    store_a.seen_version(meta["uid"], meta["resourceVersion"])  # as the controller's informer hands it on
    job = Job(JobId("trained-0a"), spec_of(obj), submitted_at=time.time())
    store_a.put([job])  # A leads and writes the job Pending
    assert held.api.get(FEDERATED_JOBS, "trained", NAMESPACE)["status"]["jobId"] == "trained-0a"

    # A places the job; its writer passes the clock check (A still leads) and is held before the PATCH leaves.
    held.hold = True
    assert elector_a.try_acquire_or_renew()  # renewed just now: the clock check passes however loaded the machine
    placed = Job(JobId("trained-0a"), job.spec, submitted_at=job.submitted_at, phase=JobPhase.PLACED, generation=1)
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            store_a.put([placed])
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - what the writer thread met is the test's finding
            outcome.append(exc)

    writer = threading.Thread(target=write, name="replica-a-writer")
    writer.start()
    assert held.waiting.wait(60), "replica A's status write never reached the API"

    # A renews no more (frozen); B takes the Lease once it has expired on B's clock, loads, and writes Succeeded.
    elector_b, _, store_b = _replica(KubeApi.connect(testbed.host.kubeconfig), "replica-b")
    eventually(elector_b.try_acquire_or_renew, timeout=60, what="replica B takes the expired Lease")
    elector_b.leading = True
    [loaded] = [j for j in store_b.load() if j.job_id == "trained-0a"]
    done = Job(loaded.job_id, loaded.spec, submitted_at=loaded.submitted_at, phase=JobPhase.SUCCEEDED, generation=1)
    store_b.put([done])
    assert held.api.get(FEDERATED_JOBS, "trained", NAMESPACE)["status"]["phase"] == "Succeeded"

    held.release.set()  # A resumes: its PATCH leaves with the version A last saw
    writer.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], Deposed), outcome
    status = held.api.get(FEDERATED_JOBS, "trained", NAMESPACE)["status"]
    assert status["phase"] == "Succeeded"  # B's status stands
    assert fence_a.deposed and lost_a == [True]  # A steps down
    held.hold = False
    with pytest.raises(Deposed):  # and writes nothing more
        store_a.put([placed])
    assert held.api.get(FEDERATED_JOBS, "trained", NAMESPACE)["status"]["phase"] == "Succeeded"
