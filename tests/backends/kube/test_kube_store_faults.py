"""The Kubernetes-mode job store when the API server does not take a write (backends/kube/store.py).

Found by reading the store against the server's contract: a status write that met a 5xx, a 429, a timeout or a
refused connection was kept for a silent retry and `put` returned as if it had stored the job. Submit then
answered OK for a job that only the federator's memory held (a failover lost it), and a scheduling cycle sent
Launch orders whose placements were not stored. Now it is StoreUnavailable, as a full disk is to the SQLite
store: Submit answers UNAVAILABLE, and the FederatedJob controller tries the object again rather than dropping
it (its informer never resyncs).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from federator.backends.kube.api import ForbiddenError, KubeError
from federator.backends.kube.resources import FINALIZER
from federator.backends.kube.store import KubeJobStore
from federator.jobfile_loading import parse_job_documents
from federator.model import Job, JobId
from federator.store import StoreUnavailable

from kube_fakes import FlakyApi, controller, federated_job

JOB = """
apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: pretrain, namespace: research}
spec: {kind: training, replicas: 1, resources: {cpu: "1"}}
"""


def job(name: str = "pretrain") -> Job:
    return Job(JobId(f"{name}-1"), parse_job_documents(JOB.replace("pretrain", name))[0], submitted_at=1.0)


@pytest.mark.parametrize("error", [
    KubeError(503, "etcdserver: leader changed", reason="ServiceUnavailable"),
    KubeError(500, "Internal error occurred", reason="InternalError"),
    KubeError(429, "storage is (re)initializing", reason="TooManyRequests"),
    KubeError(0, "PATCH /apis/federator.io/v1alpha1/...: read timed out"),
    KubeError(0, "PATCH /apis/federator.io/v1alpha1/...: [Errno 111] Connection refused"),
], ids=["503", "500", "429", "timeout", "connection-refused"])
def test_a_write_the_api_server_does_not_take_is_store_unavailable_and_not_kept_for_a_silent_retry(
        error: KubeError) -> None:
    api = FlakyApi()
    store = KubeJobStore(api)  # type: ignore[arg-type]
    store.put([job()])  # its FederatedJob exists
    api.away = error
    with pytest.raises(StoreUnavailable) as err:
        store.put([job(), job("other")])
    said = str(err.value)
    assert said.startswith("the Kubernetes API server did not take 2 of 2 job writes (job ")
    assert str(error) in said
    api.away = None
    writes = api.writes
    assert store.flush() == 0 and api.writes == writes  # the caller writes again; the store does not behind it


def test_a_write_refused_for_what_it_is_is_still_logged_and_retried_not_store_unavailable() -> None:
    api = FlakyApi()
    now = [0.0]
    store = KubeJobStore(api, timer=lambda: now[0])  # type: ignore[arg-type]
    store.put([job()])
    api.away = ForbiddenError(403, "federatedjobs/status is forbidden", reason="Forbidden")
    store.put([job()])  # not the API server being away: held for a retry (test_kube_store_refused_writes.py)
    api.away = None
    now[0] = 1.0  # the first retry is due after a second
    assert store.flush() == 0


def test_a_store_that_cannot_list_says_so_in_one_line_at_start() -> None:
    api = FlakyApi()
    api.away = KubeError(0, "GET /apis/federator.io/v1alpha1/federatedjobs: [Errno 111] Connection refused")
    with pytest.raises(StoreUnavailable, match="cannot load the jobs from FederatedJobs in https://host.invalid: "
                                               ".*Connection refused"):
        KubeJobStore(api).load()  # type: ignore[arg-type]


def test_a_federatedjob_whose_submit_met_an_away_api_server_is_reconciled_again_not_dropped(tmp_path: Any) -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api, workers=True) as (fed, ctl):
            created = federated_job(api, "pretrain", parse_yaml(JOB)["spec"])
            ctl.informer.cache["research/pretrain"] = created
            api.away = KubeError(0, "PATCH federatedjobs/pretrain/status: read timed out")
            ctl._enqueue("ADDED", created)
            await asyncio.sleep(0.2)  # tried, refused, tried again: still away
            assert not fed.jobs
            api.away = None
            for _ in range(1000):  # the job, then its status (written by the store's writer thread, after)
                if fed.jobs and "jobId" in (api.objects[("research", "pretrain")].get("status") or {}):
                    break
                await asyncio.sleep(0.02)
            (only,) = fed.jobs.values()
            assert api.objects[("research", "pretrain")]["status"]["jobId"] == only.job_id

    asyncio.run(main())


def parse_yaml(text: str) -> dict[str, Any]:
    import yaml
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


@pytest.mark.parametrize("spec", [
    {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}},
    {"kind": "training", "replicas": 0, "resources": {"cpu": "1"}},
], ids=["adding-the-finalizer", "writing-a-refusal"])
def test_an_api_server_away_while_the_controller_writes_the_object_itself_is_tried_again(
        spec: dict[str, Any]) -> None:
    """The same for the controller's own writes: a finalizer not added, a refusal not written (an object
    refused and dropped unwritten stayed without a status, and was never looked at again)."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api, workers=True) as (_fed, ctl):
            created = federated_job(api, "pretrain", spec, finalizers=[] if spec["replicas"] else None)
            ctl.informer.cache["research/pretrain"] = created
            api.away = KubeError(503, "etcdserver: leader changed", reason="ServiceUnavailable")
            ctl._enqueue("ADDED", created)
            await asyncio.sleep(0.2)
            api.away = None
            obj = api.objects[("research", "pretrain")]
            assert "status" not in obj  # nothing was written while it was away
            for _ in range(100):
                if (FINALIZER in obj["metadata"]["finalizers"]) if spec["replicas"] else "status" in obj:
                    break
                await asyncio.sleep(0.02)
            if spec["replicas"]:
                assert obj["metadata"]["finalizers"] == [FINALIZER]
            else:
                assert obj["status"]["phase"] == "Failed" and "spec.replicas" in obj["status"]["message"]

    asyncio.run(main())
