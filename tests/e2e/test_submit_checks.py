"""What a user sees from `federator submit` when a job names an unknown accelerator model (refused, exit 1,
the field and the fleet's models named) or alternatives of two vendors with one image (accepted, a warning on
stderr), through a real `federator serve` and real agents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli.get import list_jobs
from federator.jobfile import parse_job
from federator.local import LocalFederation


def _doc(name: str, accelerators: list[dict[str, object]]) -> dict[str, object]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
            "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}, "accelerators": accelerators,
                     "template": {"spec": {"containers": [{"name": "main", "image": "llm:cuda12"}]}}}}


def _submit(federation: LocalFederation, tmp_path: Path, name: str,
            accelerators: list[dict[str, object]]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(_doc(name, accelerators)))
    return subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(path), *federation.client_args()],
                          capture_output=True, text=True, timeout=60, check=False)


def test_an_unknown_model_is_refused_and_one_image_for_two_vendors_is_a_warning(
        federation: LocalFederation, tmp_path: Path) -> None:
    typo = _submit(federation, tmp_path, "typo", [{"model": "H100", "count": 8}, {"model": "Ascend910X", "count": 16}])
    assert typo.returncode == 1, typo  # refused by the federator (2 is for a file the CLI cannot read)
    assert "Traceback" not in typo.stderr
    assert "spec.accelerators[1].model: unknown accelerator model 'Ascend910X'" in typo.stderr
    assert "the fleet has: huawei/Ascend910B, nvidia/NVIDIA-A100-SXM4-80GB" in typo.stderr, typo.stderr

    shared = _submit(federation, tmp_path, "shared", [{"model": "H100", "count": 8},
                                                      {"model": "Ascend910B", "count": 16}])
    assert shared.returncode == 0, shared
    assert shared.stdout.startswith("job shared-") and " submitted (default/shared, queue default)" in shared.stdout
    (warning,) = shared.stderr.strip().splitlines()
    assert warning.startswith("warning: job shared-") and \
        "(default/shared): spec.accelerators[1]: runs on huawei but has no template override" in warning
    assert [j.spec.name for j in list_jobs(federation.client)] == ["shared"]

    # The API says the same to any client: a BadRequest naming the field, and SubmitResponse.warnings.
    with federation.client.channel() as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        bad = convert.spec_to_pb(parse_job(_doc("typo-api", [{"model": "H10O", "count": 8}])))
        with pytest.raises(grpc.RpcError) as err:
            stub.Submit(jobs_pb2.SubmitRequest(spec=bad), timeout=10)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
        assert status is not None
        violations = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(violations)
        assert [v.field for v in violations.field_violations] == ["spec.accelerators[0].model"]
        waits = convert.spec_to_pb(parse_job(_doc("waits", [{"model": "Gaudi3", "count": 8}])))
        reply = stub.Submit(jobs_pb2.SubmitRequest(spec=waits), timeout=10)
        (warning,) = reply.warnings
        assert warning.startswith("spec.accelerators: no member cluster has Gaudi3 now (the fleet has: ")


def test_a_gang_no_member_could_hold_even_empty_is_accepted_with_a_warning(
        federation: LocalFederation, tmp_path: Path) -> None:
    """Outside SRE QA, F11: 16 x 8 H100 where the largest H100 member (west-1) has 8 nodes of 8 was accepted in
    silence and waited "no node with 8 free" for good; the user hears at once that it can never run as the fleet
    stands, as of a model no member has."""
    doc = _doc("too-big", [{"model": "H100", "count": 8}])
    doc["spec"]["replicas"] = 16  # type: ignore[index]
    path = tmp_path / "too-big.yaml"
    path.write_text(yaml.safe_dump(doc))
    got = subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(path), *federation.client_args()],
                         capture_output=True, text=True, timeout=60, check=False)
    assert got.returncode == 0, got  # accepted: it runs if a member that holds it joins
    (warning,) = got.stderr.strip().splitlines()
    assert warning.startswith("warning: job too-big-") and "(default/too-big): spec.replicas: no member cluster " \
        "could hold 16 x 8 H100 even empty (the largest, west-1, has 64 NVIDIA-H100-80GB-HBM3 on 8 nodes, room " \
        "for 8): it can never run as the fleet stands" in warning, warning
