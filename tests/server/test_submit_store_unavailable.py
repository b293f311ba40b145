"""Submit in Kubernetes mode while the API server does not take writes: UNAVAILABLE, nothing kept, and the
retry with the same request id makes one job (backends/kube/store.py; tests/backends/kube/test_kube_store_faults.py
has the store's side)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from test_services_edge import good_spec, served

from federator.api.v1 import jobs_pb2_grpc
from federator.backends.kube.api import KubeError
from federator.backends.kube.store import KubeJobStore

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
