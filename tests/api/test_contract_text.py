"""The proto files are the contract: what a client must know and the code emits is written there."""

from __future__ import annotations

import re
from pathlib import Path

from google.rpc import error_details_pb2, status_pb2

from federator.jobfile import REQUEST_ID_ANNOTATION, JobFileError, parse_job
from federator.model import ReasonCode
from federator.scheduler.config import PRIORITY_LIMIT
from federator.server.errors import ERROR_DOMAIN, RETRY_AFTER_METADATA, Exhausted, PressedLimit
from federator.server.retention import DEFAULT_FINISHED_JOB_TTL, DEFAULT_MAX_FINISHED_PER_USER

ROOT = Path(__file__).resolve().parents[2]


def test_every_pending_reason_code_the_federator_emits_is_listed_in_jobs_proto() -> None:
    """RecentlyRefused, WorkloadKindUnsupported and SharingUnavailable were emitted but not in the list a
    client written from jobs.proto switches on."""
    text = (ROOT / "proto/federator/v1/jobs.proto").read_text()
    listed = text[text.index("// Reason codes"):text.index("// Annotations that mean something")]
    missing = [code.value for code in ReasonCode if code.value not in listed]
    assert not missing, f"jobs.proto's reason codes lack {missing}"


PROTOS = ROOT / "proto/federator/v1"
_RPC = re.compile(r"^  rpc (\w+)\(", re.M)


def _services(text: str) -> dict[str, str]:
    """Each `service` block of a proto file by name (the block's text up to its closing brace)."""
    return {m.group(1): text[m.end():text.index("\n}", m.end())]
            for m in re.finditer(r"^service (\w+) \{", text, re.M)}


def _rpc_comments(block: str) -> dict[str, str]:
    """Each rpc of a service block, with the comment lines just above it."""
    out = {}
    for m in _RPC.finditer(block):
        lines = block[:m.start()].rstrip("\n").split("\n")
        comment = []
        while lines and lines[-1].strip().startswith("//"):
            comment.insert(0, lines.pop().strip().removeprefix("//").strip())
        out[m.group(1)] = " ".join(comment)
    return out


def _every_rpc() -> list[tuple[str, str, str]]:
    rpcs = []
    for name in ("jobs.proto", "usage.proto", "queues.proto"):
        for service, block in _services((PROTOS / name).read_text()).items():
            rpcs += [(service, rpc, comment) for rpc, comment in _rpc_comments(block).items()]
    return rpcs


def test_every_rpc_of_the_user_api_says_whether_a_retry_is_safe() -> None:
    """Get, List, Cancel and Watch had no comment at all: a portal guessed their retry and error rules (outside
    QA, portal M3). Each says "Retry:" and the shared rules are in jobs.proto's "Calling this API"."""
    rpcs = _every_rpc()
    services = {service for service, _, _ in rpcs}
    assert {"JobService", "ClusterService", "UsageService", "QueueService"} <= services, services
    assert {("JobService", r) for r in ("Submit", "Get", "List", "Cancel", "Scale", "Watch")} <= \
        {(s, r) for s, r, _ in rpcs}
    silent = [f"{service}.{rpc}" for service, rpc, comment in rpcs if "Retry:" not in comment]
    assert not silent, f"these RPCs do not say whether a retry is safe: {silent}"


def _flat(text: str) -> str:
    """Comment text as one line: a phrase may wrap."""
    return re.sub(r"\s*\n\s*(//)?\s*", " ", text)


def _calling_this_api() -> str:
    text = (PROTOS / "jobs.proto").read_text()
    return _flat(text[text.index("// Calling this API"):text.index("// Errors: INVALID_ARGUMENT")])


def test_the_shared_rules_name_every_error_info_reason_and_limit_the_server_sends() -> None:
    """A client branches on ErrorInfo.reason, not words: a reason or limit the server sends and the contract does
    not name is one the client cannot handle."""
    rules = _calling_this_api()
    missing = [r.value for r in Exhausted if r.value not in rules]
    missing += [f'"{limit.value}"' for limit in PressedLimit if f'"{limit.value}"' not in rules]
    assert not missing, f"jobs.proto's 'Calling this API' lacks {missing}"
    assert f'"{ERROR_DOMAIN}"' in rules and RETRY_AFTER_METADATA in rules
    for code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "MAY HAVE BEEN STORED", "SAME request_id"):
        assert code in rules, code


def test_the_versioning_policy_is_stated() -> None:
    """M4: what a server does with fields it does not know, what a client does with values it does not know."""
    rules = _calling_this_api()
    for words in ("Versioning", "ignores fields it does not know", "never reused", "IdentityService.WhoAmI",
                  "enum values and strings it", "Reason.code", "ClusterStatus.state", "agent.proto is imported"):
        assert words in rules, words


def test_the_error_detail_protos_ship_with_the_contract() -> None:
    """m8: the details the server packs must be generated from proto/ alone (vendored googleapis files)."""
    vendored = "".join(p.read_text() for p in (ROOT / "proto/google/rpc").glob("*.proto"))
    assert "package google.rpc;" in vendored and "Licensed under the Apache License" in vendored
    for message in (status_pb2.Status, error_details_pb2.BadRequest, error_details_pb2.ErrorInfo,
                    error_details_pb2.RetryInfo):
        assert f"\nmessage {message.DESCRIPTOR.name} {{" in vendored, message.DESCRIPTOR.full_name
    assert "proto/google/rpc/status.proto" in _calling_this_api()


def test_the_bearer_header_and_the_request_id_rules_are_in_the_contract() -> None:
    """m4, m6, m10: the header a token goes in, the request_id/annotation rule, and how long an id is kept."""
    text = (PROTOS / "jobs.proto").read_text()
    assert "`authorization: Bearer TOKEN`" in text
    request = _flat(text[text.index("message SubmitRequest {"):text.index("string request_id = 2;")])
    for words in (REQUEST_ID_ANNOTATION, "differs from", "--finished-job-ttl", "--max-finished-jobs-per-user",
                  f"({DEFAULT_MAX_FINISHED_PER_USER} by default)", "Submit that timed out"):
        assert words in request, words
    assert DEFAULT_FINISHED_JOB_TTL == 7 * 24 * 3600  # "a week by default", as written there


def test_the_name_and_priority_limits_are_those_the_validator_applies() -> None:
    """m2: found by probing; now one line each in types.proto, checked against the code's own bounds."""
    text = (PROTOS / "types.proto").read_text()
    spec = _flat(text[text.index("message JobSpec {"):text.index("int32 priority = 8;")])
    assert f"From -{PRIORITY_LIMIT:,} to {PRIORITY_LIMIT:,}" in spec
    assert "at most 253 characters" in spec
    assert parse_name_ok("a" * 253) and not parse_name_ok("a" * 254)


def parse_name_ok(name: str) -> bool:
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
           "spec": {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}}}
    try:
        parse_job(doc)
    except JobFileError:
        return False
    return True
