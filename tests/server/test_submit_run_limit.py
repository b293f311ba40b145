"""spec.maxRunSeconds (JobSpec.max_run_seconds) is checked where a job comes in: the job file and FederatedJob
(jobfile.parse_job), the CRD's schema (kubectl hears it at once), and Submit over gRPC (INVALID_ARGUMENT naming the
proto's field). Integer seconds, from 1 to 90 days; left out, no limit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from server_support import Clock, MemoryStore, job_api, make

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.backends.kube.resources import job_from_resource, job_status, spec_of
from federator.jobfile import MAX_RUN_SECONDS, JobFileError, parse_job
from federator.jobfile_writing import spec_to_document
from federator.model import Job, JobId, JobPhase
from federator.store.codec import job_from_dict, job_to_dict

CRD = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "federator" / "crds" / "federatedjobs.yaml"


def _doc(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "t"},
            "spec": {"kind": "training", "resources": {"nvidia.com/gpu": 8}, **spec}}


def test_a_limit_is_read_written_and_stored_and_none_is_zero() -> None:
    spec = parse_job(_doc(maxRunSeconds=9_000))
    assert spec.max_run_seconds == 9_000
    assert parse_job(spec_to_document(spec)) == spec
    assert convert.spec_from_pb(convert.spec_to_pb(spec)) == spec
    unlimited = parse_job(_doc())
    assert unlimited.max_run_seconds == 0 and "maxRunSeconds" not in spec_to_document(unlimited)["spec"]
    fed = make(MemoryStore(), Clock())
    job = fed.submit(spec)
    assert job_from_dict(job_to_dict(job)).spec.max_run_seconds == 9_000


@pytest.mark.parametrize("value", [0, -60, MAX_RUN_SECONDS + 1, "2h", 1.5, True, None],
                         ids=["zero", "negative", "over-90-days", "duration-string", "fraction", "bool", "null"])
def test_a_bad_limit_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(JobFileError) as err:
        parse_job(_doc(maxRunSeconds=value))
    assert [p.field for p in err.value.problems] == ["spec.maxRunSeconds"]
    assert "must be an integer from 1 to 7776000 (seconds, 90 days; leave it out for no limit)" in str(err.value)


def test_a_kubernetes_jobs_name_for_it_is_told_ours() -> None:
    with pytest.raises(JobFileError, match=r"spec.activeDeadlineSeconds: is not a known field; did you mean "
                                           r"spec.maxRunSeconds\?"):
        parse_job(_doc(activeDeadlineSeconds=60))


def test_the_crd_bounds_it_as_the_job_file_does() -> None:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = crd["spec"]["versions"]
    field = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["maxRunSeconds"]
    assert (field["type"], field["minimum"], field["maximum"]) == ("integer", 1, MAX_RUN_SECONDS)
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["startedAt"]["type"] == "string" and status["ranSeconds"]["type"] == "number"


def test_a_negative_limit_over_grpc_is_invalid_argument_naming_the_proto_field() -> None:
    fed = make(MemoryStore(), Clock())
    request = jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job(_doc())))
    request.spec.max_run_seconds = -5

    async def main() -> None:
        async with job_api(fed) as api:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.Submit(request)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "spec.maxRunSeconds: must be an integer from 1 to 7776000" in (err.value.details() or "")
            status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
            assert status is not None
            bad = error_details_pb2.BadRequest()
            assert status.details[0].Unpack(bad)
            assert [v.field for v in bad.field_violations] == ["spec.max_run_seconds"]  # the proto's name

    asyncio.run(main())
    assert not fed.jobs


def test_kubernetes_mode_keeps_the_limit_and_the_clock_in_the_federatedjob() -> None:
    """Kubernetes mode's store is the FederatedJob: its spec carries the limit, its status the clock, so a new
    leader (or a restart) counts from the attempt's first Running report, and the earlier attempts with it."""
    cr = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
          "metadata": {"name": "t", "namespace": "team", "uid": "u1", "generation": 1},
          "spec": _doc(maxRunSeconds=3_600)["spec"]}
    spec = spec_of(cr)
    assert spec.max_run_seconds == 3_600
    job = Job(job_id=JobId("t-1"), spec=spec, submitted_at=1_700_000_000.0, phase=JobPhase.RUNNING,
              started_at=1_700_000_100.5, ran_seconds=420.25)
    status = job_status(job, now=1_700_000_200.0)
    assert status["startedAt"] == "2023-11-14T22:15:00.500000Z" and status["ranSeconds"] == 420.25
    back = job_from_resource({**cr, "status": status})
    assert back is not None and (back.started_at, back.ran_seconds) == (job.started_at, job.ran_seconds)
