"""Submit in Kubernetes mode while the API server does not take writes: UNAVAILABLE, nothing kept, and the
retry with the same request id makes one job (backends/kube/store.py; tests/backends/kube/test_kube_store_faults.py
has the store's side)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import grpc
import pytest
from test_services_edge import good_spec, served

from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.backends.kube.api import KubeError
from federator.backends.kube.store import KubeJobStore
from federator.server.job_service import _holder_told
from federator.store.errors import NameTaken

from kube_fakes import FlakyApi


def test_a_submit_over_the_api_while_the_api_server_is_away_is_unavailable_and_a_retry_succeeds() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with served(store=KubeJobStore(api)) as s:  # type: ignore[arg-type]
            request = good_spec("pretrain")
            request.request_id = "r-1"
            api.away = KubeError(503, "etcdserver: request timed out", reason="ServiceUnavailable")
            async with grpc.aio.insecure_channel(s.target) as ch:
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.Submit(request)
                assert err.value.code() is grpc.StatusCode.UNAVAILABLE
                assert "did not take 1 of 1 job writes" in (err.value.details() or "")
                assert "the job was not accepted" in (err.value.details() or "")
                assert not s.fed.jobs  # not acknowledged, so not kept
                api.away = None
                reply = await stub.Submit(request)  # the same request id: one job
                assert reply.job.job_id in s.fed.jobs
                assert api.objects[("default", "pretrain")]["status"]["jobId"] == reply.job.job_id

    asyncio.run(main())


def test_a_submit_into_a_namespace_the_host_cluster_lacks_is_refused_and_not_kept() -> None:
    """It was answered OK, and its FederatedJob's create was retried in the background for ever: the job was
    lost at the next restart, and the log said so every second. A submission of the same batch is stored."""
    async def main() -> None:
        api = FlakyApi()
        api.namespaces = {"default"}
        store = KubeJobStore(api)  # type: ignore[arg-type]
        async with served(store=store) as s:
            lost = good_spec("ghost")
            lost.spec.namespace = "no-such-ns"
            async with grpc.aio.insecure_channel(s.target) as ch:
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                got = await asyncio.gather(stub.Submit(lost), stub.Submit(good_spec("kept")),
                                           return_exceptions=True)
            refused, kept = got
            assert isinstance(refused, grpc.aio.AioRpcError)
            assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert 'would not create the FederatedJob no-such-ns/ghost' in (refused.details() or "")
            assert 'namespaces "no-such-ns" not found' in (refused.details() or "")
            assert not isinstance(kept, BaseException) and kept.job.job_id in s.fed.jobs
            assert [j.spec.name for j in s.fed.jobs.values()] == ["kept"]
            assert store.flush() == 0  # nothing kept for a retry

    asyncio.run(main())


def test_a_run_again_whose_name_a_finished_jobs_federatedjob_still_holds_is_already_exists_and_not_kept() -> None:
    """`federator submit --run-again` in Kubernetes mode of a finished job whose FederatedJob still exists (names
    are unique there): the create met 409 and was retried every flush for ever, the Submit answered OK, and the
    job was lost at the next restart. Now ALREADY_EXISTS names metadata.name, what holds it and how to free it;
    a submission of the same batch is stored; once the old object is deleted, the run again is a new job."""
    async def main() -> None:
        api = FlakyApi()
        store = KubeJobStore(api)  # type: ignore[arg-type]
        async with served(store=store) as s:
            async with grpc.aio.insecure_channel(s.target) as ch:
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                first = (await stub.Submit(good_spec("pretrain"))).job
                await stub.Cancel(jobs_pb2.CancelJobRequest(job_id=first.job_id))  # finished; its object stays
                again = good_spec("pretrain")
                again.run_again = True
                got = await asyncio.gather(stub.Submit(again), stub.Submit(good_spec("kept")),
                                           return_exceptions=True)
                refused, kept = got
                assert isinstance(refused, grpc.aio.AioRpcError)
                assert refused.code() is grpc.StatusCode.ALREADY_EXISTS
                details = refused.details() or ""
                assert details.startswith("metadata.name: FederatedJob default/pretrain exists and is not this "
                                          f"job's (job {first.job_id}, Cancelled)")
                assert "kubectl delete federatedjob -n default pretrain" in details
                assert details.endswith("the job was not accepted")
                assert not isinstance(kept, BaseException) and kept.job.job_id in s.fed.jobs
                assert sorted(j.job_id for j in s.fed.jobs.values()) == sorted([first.job_id, kept.job.job_id])
                assert api.objects[("default", "pretrain")]["status"]["jobId"] == first.job_id  # not written over
                assert store.flush() == 0  # nothing kept for a retry
                with pytest.raises(grpc.aio.AioRpcError) as plain:  # the name's holder is the finished job again
                    await stub.Submit(good_spec("pretrain"))
                assert plain.value.code() is grpc.StatusCode.ALREADY_EXISTS and "--run-again" in str(plain.value)
                # and says the object must go first, or the run again it asks for is refused in turn
                assert "after deleting its FederatedJob (kubectl delete federatedjob -n default pretrain)" in \
                    str(plain.value)
                del api.objects[("default", "pretrain")]  # kubectl delete federatedjob -n default pretrain
                rerun = (await stub.Submit(again)).job
                assert rerun.job_id != first.job_id
                assert api.objects[("default", "pretrain")]["status"]["jobId"] == rerun.job_id

    asyncio.run(main())


def test_a_caller_who_may_not_see_the_holding_job_is_not_told_of_it() -> None:
    fed = SimpleNamespace(jobs={"pretrain-0": object()})
    refused = NameTaken("metadata.name: FederatedJob research/pretrain exists and is not this job's "
                        "(job pretrain-0, Succeeded); ...", frozenset({"pretrain-1"}), holder="pretrain-0",
                        vague="metadata.name: FederatedJob research/pretrain exists and is not this job's; ...")
    hidden = _holder_told(refused, lambda other: False, fed)  # type: ignore[arg-type]
    assert "pretrain-0" not in hidden and hidden.endswith("; the job was not accepted")
    assert "pretrain-0, Succeeded" in _holder_told(refused, lambda other: True, fed)  # type: ignore[arg-type]
    nobody = NameTaken("taken (not a job yet)", frozenset({"pretrain-1"}), vague="taken")
    assert _holder_told(nobody, lambda other: False, fed).startswith("taken (not a job yet)")  # type: ignore[arg-type]
