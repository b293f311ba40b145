"""The job API's limits (issue 13, item 9): List pages, bounded error messages, BadRequest field violations.

Over real loopback sockets with the real services. The clients here are the
generated Python stubs on grpcio's C core, the client that failed with
RESOURCE_EXHAUSTED when an error echoed a 20 KB name back.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from test_services_edge import channel, good_spec, served

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.cli.get import list_jobs
from federator.security.limits import Limits
from federator.security.tls import ClientOptions
from federator.server.errors import both_names, proto_field


def test_list_pages_jobs_so_that_huge_legal_jobs_never_make_it_fail_for_everyone() -> None:
    async def main() -> None:
        async with served(limits=Limits(max_message_bytes=1 << 20)) as s:
            for i in range(6):  # each within the 1 MiB limit; together far past the 4 MiB transport limit
                big = good_spec(f"big-{i}")
                # (as big as legal: templates at most half the message limit, annotations 256 KiB as Kubernetes)
                big.spec.pod_template_json = json.dumps({"spec": {"containers": [
                    {"name": "main", "image": "trainer", "args": ["x" * 500_000]}]}})
                big.spec.annotations["example.com/notes"] = "y" * 250_000
                s.fed.submit(convert.spec_from_pb(big.spec))
            for i in range(7):
                s.fed.submit(convert.spec_from_pb(good_spec(f"small-{i}").spec))
            async with channel(s.target) as ch:
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                names: list[str] = []
                pages = 0
                token = ""
                while True:
                    reply = await stub.List(jobs_pb2.ListJobsRequest(page_size=5, page_token=token))
                    assert reply.ByteSize() <= 4 * (1 << 20)
                    names += [j.spec.name for j in reply.jobs]
                    pages += 1
                    token = reply.next_page_token
                    if not token:
                        break
                assert names == [f"big-{i}" for i in range(6)] + [f"small-{i}" for i in range(7)]
                assert pages >= 4  # bounded by bytes (two big jobs a page), then by page_size
                with_bad_token = stub.List(jobs_pb2.ListJobsRequest(page_token="not-a-token"))
                try:
                    await with_bad_token
                    raise AssertionError("a bad page token was accepted")
                except grpc.aio.AioRpcError as err:
                    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and "page_token" in (err.details() or "")
            # The CLI's client walks the pages (in a thread: it is a blocking client).
            jobs = await asyncio.to_thread(list_jobs, ClientOptions(server=s.target, insecure=True), page_size=3)
            assert len(jobs) == 13

    asyncio.run(main())


def _refusal(target: str, request: jobs_pb2.SubmitRequest) -> grpc.RpcError:
    """What the sync C-core client gets for a job the federator must refuse."""
    with grpc.insecure_channel(target) as ch:
        try:
            jobs_pb2_grpc.JobServiceStub(ch).Submit(request, timeout=10)
        except grpc.RpcError as err:
            return err
    raise AssertionError("a bad job was accepted")


def _submit(target: str, request: jobs_pb2.SubmitRequest) -> None:
    with grpc.insecure_channel(target) as ch:
        jobs_pb2_grpc.JobServiceStub(ch).Submit(request, timeout=10)


def _bad_request(err: grpc.RpcError) -> error_details_pb2.BadRequest:
    """The BadRequest an INVALID_ARGUMENT refusal carries in its status details."""
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    (detail,) = status.details
    bad = error_details_pb2.BadRequest()
    assert detail.Unpack(bad)
    return bad


def test_a_bad_submit_gets_invalid_argument_with_field_violations_named_as_the_proto_names_them() -> None:
    async def main() -> None:
        async with served() as s:
            request = good_spec("ok", resources={"cpu": "1"})
            request.spec.name = "X" * 20_000  # a C-core client failed on the 20 KB echo with RESOURCE_EXHAUSTED
            request.spec.labels["bad key!"] = "v"
            request.spec.preferred_regions.append("West Coast")
            err = await asyncio.to_thread(_refusal, s.target, request)  # the sync C-core client, in a thread
            assert len(err.details()) < 2_000 and "20000 characters" in err.details()  # type: ignore[attr-defined]
            bad = _bad_request(err)
            fields = [v.field for v in bad.field_violations]
            assert fields == ["spec.name", "spec.labels", "spec.preferred_regions[0]"], fields
            assert all(v.description for v in bad.field_violations)

    asyncio.run(main())


@pytest.mark.parametrize(("regions", "expected"), [
    # An empty name used to turn the whole list's error into one Python repr with no index.
    (["West", "-x", ""], {"spec.preferred_regions[0]": "'West'", "spec.preferred_regions[1]": "'-x'",
                          "spec.preferred_regions[2]": "''"}),
    (["west", "West"], {"spec.preferred_regions[1]": "'West'"}),
    (["east", ""], {"spec.preferred_regions[1]": "''"}),
], ids=["three-bad", "case", "empty"])
def test_every_bad_preferred_region_is_named_by_its_index_and_value(regions: list[str],
                                                                    expected: dict[str, str]) -> None:
    async def main() -> None:
        async with served() as s:
            request = good_spec("regions", resources={"cpu": "1"})
            request.spec.preferred_regions.extend(regions)
            bad = _bad_request(await asyncio.to_thread(_refusal, s.target, request))
            got = {v.field: v.description for v in bad.field_violations}
            assert list(got) == list(expected), got
            for field, value in expected.items():
                assert "must be a region name" in got[field] and got[field].endswith(f"got {value}"), got[field]

    asyncio.run(main())


@pytest.mark.parametrize(("field", "proto"), [
    ("spec.acceleratorModels[1]", "spec.accelerator_models[1]"),
    ("spec.acceleratorModels", "spec.accelerator_models"),
    ("spec.gpuModels[1]", "spec.accelerator_models[1]"),  # the old name, still read
    ("spec.gpuModels", "spec.accelerator_models"),
    ("spec.accelerators[0].model", "spec.accelerators[0].model"),
    ("spec.accelerators[2].count", "spec.accelerators[2].milli"),
    ("spec.accelerators[0].minMemoryMiB", "spec.accelerators[0].min_memory_mib"),
    ("spec.accelerators[1].template", "spec.accelerators[1].pod_template_json"),
    ("spec.accelerators[1].template.spec.containers[0]", "spec.accelerators[1].pod_template_json"),
])
def test_either_name_of_accelerator_models_is_the_protos_accelerator_models(field: str, proto: str) -> None:
    assert proto_field(field) == proto


@pytest.mark.parametrize(("models", "problem"), [
    (["H100", "H100 SXM"], "must be an accelerator model name such as 'H100'"),  # the job file's check
    (["H100", "A1OO"], "unknown accelerator model 'A1OO'"),  # the fleet's (server/fleet_models.py)
], ids=["not-a-model-name", "unknown-model"])
def test_a_bad_accelerator_model_is_a_violation_of_accelerator_models(models: list[str], problem: str) -> None:
    """Both checks name the job file's field (spec.acceleratorModels[1]); a client reads the proto's."""
    async def main() -> None:
        async with served() as s:
            request = good_spec("models", resources={"nvidia.com/gpu": 8})
            request.spec.accelerator_models[:] = models
            err = await asyncio.to_thread(_refusal, s.target, request)
            assert err.details().startswith(  # type: ignore[attr-defined]
                "spec.acceleratorModels[1]: ")  # the proto's JSON name: no internal name beside it
            bad = _bad_request(err)
            assert [v.field for v in bad.field_violations] == ["spec.accelerator_models[1]"]
            assert problem in bad.field_violations[0].description

    asyncio.run(main())


def test_a_proto_client_over_the_accelerator_limit_reads_its_own_field_in_the_message() -> None:
    """The limit check speaks the job file (`spec.resources.nvidia.com/gpu`); a client that set
    `accelerator_milli` finds that name in the message too, not only in the status details."""
    async def main() -> None:
        async with served(limits=Limits(max_accelerators_per_job=16)) as s:
            request = good_spec("big", replicas=4, resources={"nvidia.com/gpu": 8})
            err = await asyncio.to_thread(_refusal, s.target, request)
            assert err.details().startswith(  # type: ignore[attr-defined]
                "spec.resources.nvidia.com/gpu (spec.resources.accelerator_milli): the job asks for 32 accelerators")
            bad = _bad_request(err)
            assert [v.field for v in bad.field_violations] == ["spec.resources.accelerator_milli"]

    asyncio.run(main())


@pytest.mark.parametrize(("field", "value", "named"), [
    ("accelerator_milli", -1, "spec.resources.nvidia.com/gpu (spec.resources.accelerator_milli): must not be negative"),
    ("cpu_milli", -500, "spec.resources.cpu (spec.resources.cpu_milli): must not be negative"),
    ("memory_bytes", -1, "spec.resources.memory (spec.resources.memory_bytes): must not be negative"),
])
def test_a_negative_amount_from_a_proto_client_is_named_in_its_own_field_and_nothing_else_is_made_up(
        field: str, value: int, named: str) -> None:
    """A client that sent `accelerator_milli: -1` with `replicas: 0` used to read of `'-1m' is not a quantity`
    under the job file's name only (the message gave both names for its first field alone), and was told its
    spec `asks for nothing`, which it did not send."""
    async def main() -> None:
        async with served() as s:
            request = good_spec("negative", resources={"cpu": "1"})
            request.spec.replicas = 0
            request.spec.resources.cpu_milli = 0
            setattr(request.spec.resources, field, value)
            err = await asyncio.to_thread(_refusal, s.target, request)
            said = err.details()  # type: ignore[attr-defined]
            assert said.startswith("spec.replicas: ") and f"; {named}, got " in said, said
            assert "asks for nothing" not in said and "is not a quantity" not in said, said
            fields = [v.field for v in _bad_request(err).field_violations]
            assert fields == ["spec.replicas", f"spec.resources.{field}"], fields
            assert not s.fed.jobs

    asyncio.run(main())


def test_a_negative_group_size_from_a_proto_client_is_refused_naming_the_field() -> None:
    """group_size is derived from the workload; a client's positive value is replaced, as kind and replicas
    are. A negative one was silently replaced too, so a client with a sign bug never heard of it."""
    async def main() -> None:
        async with served() as s:
            request = good_spec("grouped", resources={"cpu": "1"})
            request.spec.group_size = -3
            err = await asyncio.to_thread(_refusal, s.target, request)
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
            said = err.details()  # type: ignore[attr-defined]
            assert said.startswith("spec.group_size: must not be negative, got -3"), said
            assert not s.fed.jobs
            request.spec.group_size = 0
            await asyncio.to_thread(_submit, s.target, request)
            assert len(s.fed.jobs) == 1

    asyncio.run(main())


def _deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


@pytest.mark.parametrize(("where", "text", "field", "problem"), [
    ("template", "{x", "spec.pod_template_json", "not JSON: Expecting property name"),
    ("template", "[1]", "spec.pod_template_json", "must be a JSON object, got list"),
    ("template", '{"spec": NaN}', "spec.pod_template_json", "NaN is not JSON"),
    ("template", '{"x": "\\ud800"}', "spec.pod_template_json", "unpaired UTF-16 surrogate"),
    ("workload", "[" * 100_000 + "]" * 100_000, "spec.workload_json", "nested more than 64 levels deep"),
    ("workload", _deep(5_000), "spec.workload_json", "nested more than 64 levels deep"),
    ("workload", '{"n": ' + "7" * 5_000 + "}", "spec.workload_json", "more than 4300 digits"),
    ("alternative", "{x", "spec.accelerators[0].pod_template_json", "not JSON: Expecting property name"),
    ("alternative", _deep(5_000), "spec.accelerators[0].pod_template_json", "nested more than 64 levels deep"),
], ids=["bad", "array", "nan", "surrogate", "deep-array", "deep-object", "huge-number", "alt-bad", "alt-deep"])
def test_a_json_text_the_federator_cannot_read_is_invalid_argument_naming_its_field(
        where: str, text: str, field: str, problem: str) -> None:
    """These were UNKNOWN with a traceback in the server's log (a JSONDecodeError from an alternative's
    template, a RecursionError from a deep workload), or accepted (NaN, a lone surrogate) for an agent's
    strict parser to choke on in a Launch. The rest of the spec is still checked in the same answer."""
    async def main() -> None:
        async with served() as s:
            request = good_spec("json", resources={"cpu": "1"})
            request.spec.labels["bad key!"] = "v"
            if where == "template":
                request.spec.pod_template_json = text
            elif where == "workload":
                request.spec.workload_json = text
            else:
                request.spec.accelerators.add(model="H100", milli=1000, pod_template_json=text)
            err = await asyncio.to_thread(_refusal, s.target, request)
            violations = {v.field: v.description for v in _bad_request(err).field_violations}
            assert problem in violations.get(field, ""), violations
            assert "spec.labels" in violations, violations
            assert not s.fed.jobs

    asyncio.run(main())


def test_listing_a_queue_that_cannot_exist_is_invalid_argument_not_an_empty_list() -> None:
    """`queue: "BAD Q"` answered an empty list, as if the queue were merely empty."""
    async def main() -> None:
        async with served() as s:
            with grpc.insecure_channel(s.target) as ch:
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                assert (await asyncio.to_thread(stub.List, jobs_pb2.ListJobsRequest(queue="research"),
                                                timeout=10)).jobs == []
                try:
                    await asyncio.to_thread(stub.List, jobs_pb2.ListJobsRequest(queue="BAD Q"), timeout=10)
                except grpc.RpcError as err:
                    assert [v.field for v in _bad_request(err).field_violations] == ["queue"]
                    assert "must be a lower-case DNS name" in err.details()  # type: ignore[attr-defined]
                else:
                    raise AssertionError("a queue name that cannot exist was listed")

    asyncio.run(main())


def test_a_page_token_that_nests_deep_is_refused_as_not_ours() -> None:
    """A RecursionError from json.loads of the token's base64 was UNKNOWN."""
    import base64

    async def main() -> None:
        async with served() as s:
            token = base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("=")
            with grpc.insecure_channel(s.target) as ch:
                try:
                    await asyncio.to_thread(jobs_pb2_grpc.JobServiceStub(ch).List,
                                            jobs_pb2.ListJobsRequest(page_token=token), timeout=10)
                except grpc.RpcError as err:
                    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, err  # type: ignore[attr-defined]
                    assert "page_token: not a token this server made" in err.details()  # type: ignore[attr-defined]
                else:
                    raise AssertionError("a forged token was taken")

    asyncio.run(main())


@pytest.mark.parametrize(("message", "said"), [
    ("spec.resources.memory: not a quantity", "spec.resources.memory (spec.resources.memory_bytes): not a quantity"),
    ("spec.replicas: must be at least 1", "spec.replicas: must be at least 1"),  # one name in both
    ("apiVersion: must be federator.io/v1alpha1", "apiVersion: must be federator.io/v1alpha1"),  # no proto field
    ("the job is too big", "the job is too big"),  # no field
])
def test_a_message_names_the_proto_field_where_it_differs(message: str, said: str) -> None:
    assert both_names(message) == said


def test_a_submit_without_a_kind_hears_of_its_other_bad_fields_too_but_not_of_a_kinds_own() -> None:
    """Before, the missing kind was the only violation, and the client learnt its next mistake a round trip
    later. A problem of one kind only (minRegions on training work) is not the client's: it may mean the other."""
    async def main() -> None:
        async with served() as s:
            request = good_spec("kindless", resources={"cpu": "1"})
            request.spec.kind = types_pb2.JOB_KIND_UNSPECIFIED
            request.spec.replicas = -2
            request.spec.labels["bad key!"] = "v"
            request.spec.min_regions = 2
            err = await asyncio.to_thread(_refusal, s.target, request)
            assert err.details().startswith("spec.kind: must be training or inference")  # type: ignore[attr-defined]
            fields = [v.field for v in _bad_request(err).field_violations]
            assert fields == ["spec.kind", "spec.labels", "spec.replicas"], fields
            assert not s.fed.jobs

    asyncio.run(main())


def test_an_unknown_kind_beside_a_workload_is_its_only_problem() -> None:
    """The workload brings the kind, replicas and resources: its spec is read with them, so the client is not
    told that a spec which names no replicas or resources of its own asks for nothing."""
    import json

    from workload_objects import fresh

    async def main() -> None:
        async with served() as s:
            request = jobs_pb2.SubmitRequest(spec=types_pb2.JobSpec(
                name="with-workload", kind=9, workload_json=json.dumps(fresh("JobSet"))))
            err = await asyncio.to_thread(_refusal, s.target, request)
            assert [v.field for v in _bad_request(err).field_violations] == ["spec.kind"], err.details()  # type: ignore[attr-defined]
            request.spec.labels["bad key!"] = "v"
            err = await asyncio.to_thread(_refusal, s.target, request)
            assert [v.field for v in _bad_request(err).field_violations] == ["spec.kind", "spec.labels"]

    asyncio.run(main())
