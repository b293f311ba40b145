"""ListJobsFilter.label_selector and CancelJobsRequest.label_selector (kubectl's -l, since 0.17.0) over real gRPC on
loopback: the federator filters by each job's labels (JobSpec.labels, a FederatedJob's metadata.labels), echoes the
selector in applied_filter, names the field of a bad one, and seals it into a CancelJobs page token, so a page asked
with another selector than its token's is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from federator.api import convert
from federator.api.features import FEATURES, JOBS_LABEL_SELECTOR
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.jobfile import parse_job
from federator.security.audit import AuditLog
from tests.server.test_services_edge import channel, served


def labelled(name: str, queue: str = "default", **labels: str) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "labels": {k.replace("__", "/").replace("_", "-"): v for k, v in labels.items()}},
        "spec": {"kind": "training", "queue": queue, "resources": {"cpu": "1"}}})))


async def _fleet(jobs: jobs_pb2_grpc.JobServiceStub) -> None:
    await jobs.Submit(labelled("a-0", armada__job_set="js1", app="llama"))
    await jobs.Submit(labelled("a-1", armada__job_set="js1"))
    await jobs.Submit(labelled("b-0", armada__job_set="js2", app="llama"))
    await jobs.Submit(labelled("c-0"))
    await jobs.Submit(labelled("a-2", armada__job_set="js1", app="mistral"))


def test_list_takes_only_the_jobs_whose_labels_match_and_says_it_did() -> None:
    async def main_() -> None:
        async with served() as s, channel(s.target) as ch:
            jobs = jobs_pb2_grpc.JobServiceStub(ch)
            await _fleet(jobs)

            async def names(selector: str, **request: object) -> list[str]:
                reply = await jobs.List(jobs_pb2.ListJobsRequest(
                    filter=jobs_pb2.ListJobsFilter(label_selector=selector), **request))  # type: ignore[arg-type]
                assert reply.applied_filter.label_selector == selector  # the federator filtered
                return [j.spec.name for j in reply.jobs]

            assert await names("armada/job-set=js1") == ["a-0", "a-1", "a-2"]
            assert await names("armada/job-set=js1,app!=llama") == ["a-1", "a-2"]
            assert await names("app") == ["a-0", "b-0", "a-2"]
            assert await names("!armada/job-set") == ["c-0"]
            assert await names("armada/job-set=js3") == []
            assert await names("") == ["a-0", "a-1", "b-0", "c-0", "a-2"]

            first = await jobs.List(jobs_pb2.ListJobsRequest(
                page_size=2, filter=jobs_pb2.ListJobsFilter(label_selector="armada/job-set=js1")))
            assert [j.spec.name for j in first.jobs] == ["a-0", "a-1"]
            with pytest.raises(grpc.aio.AioRpcError) as err:  # a page token is bound to its selector
                await jobs.List(jobs_pb2.ListJobsRequest(page_size=2, page_token=first.next_page_token,
                                                         filter=jobs_pb2.ListJobsFilter(label_selector="app")))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "page_token" in (err.value.details() or "")

            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.List(jobs_pb2.ListJobsRequest(filter=jobs_pb2.ListJobsFilter(label_selector="app in (x)")))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "filter.label_selector" in (err.value.details() or "")
            assert "set-based" in (err.value.details() or "")

    asyncio.run(main_())


def test_cancel_jobs_takes_the_selectors_jobs_page_by_page_and_seals_the_selector_in_its_token(tmp_path: Path) \
        -> None:
    audit = tmp_path / "audit.jsonl"

    async def main_() -> None:
        async with served(audit=AuditLog(audit)) as s, channel(s.target) as ch:
            jobs = jobs_pb2_grpc.JobServiceStub(ch)
            await _fleet(jobs)
            ask = jobs_pb2.CancelJobsRequest(queue="default", label_selector="armada/job-set=js1", max_jobs=1)
            first = await jobs.CancelJobs(ask)
            assert first.matched == 3 and [r.name for r in first.results] == ["a-0"]
            assert first.next_page_token

            changed = jobs_pb2.CancelJobsRequest(queue="default", label_selector="app", max_jobs=1,
                                                 page_token=first.next_page_token)
            with pytest.raises(grpc.aio.AioRpcError) as err:  # the selector is part of what the token sealed
                await jobs.CancelJobs(changed)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "page_token" in (err.value.details() or "")
            dropped = jobs_pb2.CancelJobsRequest(queue="default", max_jobs=1, page_token=first.next_page_token)
            with pytest.raises(grpc.aio.AioRpcError) as err:  # and so is its absence: no widening to the queue
                await jobs.CancelJobs(dropped)
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT

            done = list(first.results)
            token = first.next_page_token
            while token:
                page = await jobs.CancelJobs(jobs_pb2.CancelJobsRequest(
                    queue="default", label_selector="armada/job-set=js1", max_jobs=1, page_token=token))
                assert page.operation_id == first.operation_id
                done += page.results
                token = page.next_page_token
            assert [(r.name, r.outcome) for r in done] == [(n, jobs_pb2.CANCEL_OUTCOME_CANCELLED)
                                                           for n in ("a-0", "a-1", "a-2")]
            phases = {j.spec.name: j.phase for j in s.fed.jobs.values()}
            assert phases["b-0"].value == "Pending" and phases["c-0"].value == "Pending"
            bulk = [x for x in map(json.loads, audit.read_text().splitlines()) if x["action"] == "cancel.bulk"]
            assert [x["object"].get("label_selector") for x in bulk] == ["armada/job-set=js1"]  # the filter audited

            with pytest.raises(grpc.aio.AioRpcError) as err:
                await jobs.CancelJobs(jobs_pb2.CancelJobsRequest(queue="default", label_selector="app=x,,b"))
            assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "label_selector" in (err.value.details() or "") and "empty requirement" in (err.value.details()
                                                                                                or "")

    asyncio.run(main_())


def test_whoami_lists_the_feature_so_a_client_knows() -> None:
    assert JOBS_LABEL_SELECTOR == "jobs.label_selector" and JOBS_LABEL_SELECTOR in FEATURES
