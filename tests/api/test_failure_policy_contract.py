"""types.proto's FailurePolicy is the whole contract of spec.failurePolicy: a client written from the proto files
alone learns the bound the validator applies, what counts, the reason code it waits with and the feature that
says a federator serves it (server/failure_restarts.py, model/failure_policy.py)."""

from __future__ import annotations

from pathlib import Path

from federator.api.features import JOBS_FAILURE_POLICY
from federator.api.v1 import types_pb2
from federator.model import MAX_RESTARTS_LIMIT, ReasonCode

PROTOS = Path(__file__).resolve().parents[2] / "proto/federator/v1"


def _block(text: str, start: str, end: str) -> str:
    return text[text.index(start):text.index(end, text.index(start))]


def test_the_proto_states_the_bound_the_counted_ends_the_code_and_the_feature() -> None:
    text = (PROTOS / "types.proto").read_text()
    policy = _block(text, "message FailurePolicy {", "\n}")
    assert f"0 to {MAX_RESTARTS_LIMIT}; 0 = never" in policy
    assert "INVALID_ARGUMENT naming\n  // spec.failurePolicy.maxRestarts" in policy
    for term in ("JobUpdate.lost", "federator.io/early-failure: fail", "a cancel", "Job.failure_restarts",
                 ReasonCode.FAILED_RESTARTING.value, "JobDependency afterok", "ends Cancelled"):
        assert term.replace(" ", "") in policy.replace("\n  //", "").replace(" ", ""), term
    field = _block(text, "  // What the federator does when a member reports the job Failed", "failure_policy = 25;")
    assert f'"{JOBS_FAILURE_POLICY}"' in field and "before 0.18.0" in field


def test_the_field_numbers_are_the_ones_shipped() -> None:
    """A renumbered field is read as another by every client built before: the numbers never change."""
    assert types_pb2.JobSpec.DESCRIPTOR.fields_by_name["failure_policy"].number == 25
    assert types_pb2.FailurePolicy.DESCRIPTOR.fields_by_name["max_restarts"].number == 1
    assert types_pb2.Job.DESCRIPTOR.fields_by_name["failure_restarts"].number == 24
