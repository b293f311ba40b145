"""The proto files are the contract: what a client must know and the code emits is written there."""

from __future__ import annotations

from pathlib import Path

from federator.model import ReasonCode

ROOT = Path(__file__).resolve().parents[2]


def test_every_pending_reason_code_the_federator_emits_is_listed_in_jobs_proto() -> None:
    """RecentlyRefused, WorkloadKindUnsupported and SharingUnavailable were emitted but not in the list a
    client written from jobs.proto switches on."""
    text = (ROOT / "proto/federator/v1/jobs.proto").read_text()
    listed = text[text.index("// Reason codes"):text.index("// Annotations that mean something")]
    missing = [code.value for code in ReasonCode if code.value not in listed]
    assert not missing, f"jobs.proto's reason codes lack {missing}"
