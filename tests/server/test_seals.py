"""The seals of a Launch and of a job-ending Cancel (server/seals.py): bound to the placement, job, generation and
cluster they were made for, under a key of the serving key, and checked only where the federator requires them."""

from __future__ import annotations

import pytest
from server_support import Clock, MemoryStore, make

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.jobfile import parse_job
from federator.model import JobPhase
from federator.security.limits import RejectReason
from federator.server.intake import SubmitError
from federator.server.seals import OTHER_KEY, UNSEALED, WRONG, Seals
from federator.server.validation import check_update

KEY = b"serving key"
PID = "a-1.g2.east-1"


def test_a_launch_seal_proves_that_placement_job_generation_and_cluster_only() -> None:
    seals = Seals(KEY, required=True)
    seal = seals.launch(PID, "a-1", 2, "east-1")
    assert seals.launched(seal, PID, "a-1", 2, "east-1")
    assert Seals(KEY, required=True).launched(seal, PID, "a-1", 2, "east-1")  # the same key after a restart
    for other in ((PID, "a-1", 2, "west-1"), (PID, "a-1", 3, "east-1"), ("a-1.g3.east-1", "a-1", 2, "east-1"),
                  (PID, "b-1", 2, "east-1")):
        assert not seals.launched(seal, *other), other
    assert not seals.launched("", PID, "a-1", 2, "east-1")
    assert not seals.ended(seals.cancel(PID, "west-1"), PID, "east-1")
    assert not seals.ended(seal, PID, "east-1")  # a Launch's seal is no Cancel's


def test_a_seal_under_another_key_is_not_taken_and_said_so() -> None:
    old, new = Seals(b"the key before", required=True), Seals(KEY, required=True)
    seal = old.cancel(PID, "east-1")
    assert not new.ended(seal, PID, "east-1")
    assert "under another key" in new.why_not(seal)
    assert "no seal" in new.why_not("")
    assert "did not make" in new.why_not(new.cancel("x.g1.east-1", "east-1"))


def test_a_seal_is_checked_under_the_key_it_names_and_told_other_key_only_when_that_key_is_not_held() -> None:
    old = Seals(b"the key before", required=True)
    both = Seals(KEY, required=True, also=[b"the key before"])
    seal = old.cancel(PID, "east-1")
    assert both.ended(seal, PID, "east-1")  # under the older key it names, one `both` holds
    assert both.reason(both.cancel("x.g1.east-1", "east-1")) == WRONG  # a key held: the seal is wrong
    assert Seals(KEY, required=True).reason(seal) == OTHER_KEY
    named_elsewhere = "s2" + seal[2:]  # the same key id, behind a version this federator does not make
    assert not both.ended(named_elsewhere, PID, "east-1") and both.reason(named_elsewhere) == WRONG
    assert both.reason("") == UNSEALED


def test_an_insecure_federator_does_not_require_seals() -> None:
    seals = Seals(None, required=False)
    assert seals.launched("", PID, "a-1", 2, "east-1") and seals.ended("forged", PID, "east-1")


@pytest.mark.parametrize("field", ["launch_seal", "cancel_seal"])
def test_a_seal_too_long_or_unprintable_is_refused_naming_the_field(field: str) -> None:
    running = convert.phase_to_pb(JobPhase.RUNNING)
    assert check_update(agent_pb2.JobUpdate(placement_id=PID, phase=running, **{field: "s1.ab.CD"}), None) is None
    for bad in ("x" * 129, "s1.\n", "\u00e9" * 100):  # the last: printable, not ASCII (goagentqa62 H1)
        refusal = check_update(agent_pb2.JobUpdate(placement_id=PID, phase=running, **{field: bad}), None)
        assert refusal is not None and refusal.reason is RejectReason.MALFORMED
        assert refusal.message.startswith(f"job_update.{field}: must be empty or at most 128 printable ASCII "
                                          "characters")


def test_a_seal_of_any_characters_is_compared_not_raised_on() -> None:
    """goagentqa62 H1: hmac.compare_digest raises TypeError on a str with non-ASCII characters; the comparison is of
    bytes, so a seal that reaches it whatever it holds is simply not this federator's."""
    seals = Seals(KEY, required=True)
    for odd in ("\u00e9" * 20, "s1.\u200d", "\U0001f600"):
        assert not seals.launched(odd, PID, "a-1", 2, "east-1")
        assert not seals.ended(odd, PID, "east-1")


def test_a_job_may_not_carry_the_seal_annotation_the_agent_keeps() -> None:
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "w"},
           "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"},
                    "template": {"metadata": {"annotations": {"federator.io/launch-seal": "s1.x.y"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    with pytest.raises(SubmitError, match=r"spec\.template\.metadata\.annotations\[federator\.io/launch-seal\]"):
        make(MemoryStore(), Clock()).submit(parse_job(doc))
