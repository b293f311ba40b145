"""INVALID_ARGUMENT with the bad fields as data: `google.rpc.BadRequest` violations named as the proto names them.

A client in any language reads `grpc-status-details-bin` (grpcio-status in
Python, `status.FromError` in Go, `@grpc/grpc-js` metadata in Node) and gets
each bad field by its proto path (`spec.resources.accelerator_milli`), not only the
job file's spelling in a sentence (`spec.resources.nvidia.com/gpu: ...`). The
message stays human and bounded: a status over a few KB makes C-core clients
fail with RESOURCE_EXHAUSTED instead of showing the error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from federator.jobfile import FieldProblem

MAX_MESSAGE_CHARS = 2_000
"""A status message is cut past this: an error must never echo a huge input back."""

# Job file (FederatedJob) field -> JobSpec proto field, longest prefix first.
_PROTO_NAMES: tuple[tuple[str, str], ...] = (
    ("metadata.name", "spec.name"),
    ("metadata.namespace", "spec.namespace"),
    ("metadata.labels", "spec.labels"),
    ("metadata.annotations", "spec.annotations"),
    ("spec.resources.cpu", "spec.resources.cpu_milli"),
    ("spec.resources.memory", "spec.resources.memory_bytes"),
    ("spec.resources.nvidia.com/gpu", "spec.resources.accelerator_milli"),
    ("spec.acceleratorModels", "spec.accelerator_models"),
    ("spec.gpuModels", "spec.accelerator_models"),  # the old name of acceleratorModels, kept working
    ("spec.regions.preferred", "spec.preferred_regions"),
    ("spec.regions.allowed", "spec.allowed_regions"),
    ("spec.regions.minRegions", "spec.min_regions"),
    ("spec.regions.user", "spec.user_region"),
    ("spec.regions.maxLatencyMs", "spec.max_latency_ms"),
    ("spec.clusters.selector.matchLabels", "spec.clusters.selector.match_labels"),
    ("spec.clusters.selector.matchExpressions", "spec.clusters.selector.match_expressions"),
    ("spec.maxRunSeconds", "spec.max_run_seconds"),
    ("spec.failurePolicy.maxRestarts", "spec.failure_policy.max_restarts"),
    ("spec.regions.weights", "spec.region_weights"),
    ("spec.minReplicas", "spec.min_replicas"),
    ("spec.template", "spec.pod_template_json"),
    ("spec.workload", "spec.workload_json"),
    ("apiVersion", "spec"),
    ("kind", "spec"),
    ("document", "spec"),
)


_WHOLE = frozenset({"apiVersion", "kind", "document", "spec.workload", "spec.template"})


# spec.accelerators[i]'s job-file keys -> AcceleratorAlternative's proto fields.
_ALTERNATIVE = re.compile(r"^spec\.accelerators\[(\d+)\]\.(count|minMemoryMiB|template)(?=$|[.\[])")
_ALTERNATIVE_NAMES = {"count": "milli", "minMemoryMiB": "min_memory_mib", "template": "pod_template_json"}


def proto_field(field: str) -> str:
    """The proto path of a job-file field (`spec.acceleratorModels[1]` -> `spec.accelerator_models[1]`); others
    unchanged."""
    m = _ALTERNATIVE.match(field)
    if m is not None:
        name = _ALTERNATIVE_NAMES[m.group(2)]
        return f"spec.accelerators[{m.group(1)}].{name}" + ("" if name == "pod_template_json" else field[m.end():])
    for yaml_name, proto_name in _PROTO_NAMES:
        if field == yaml_name or field.startswith((yaml_name + "[", yaml_name + ".")):
            return proto_name if yaml_name in _WHOLE else proto_name + field[len(yaml_name):]
    return field


def cut(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return message if len(message) <= limit else f"{message[:limit]}... ({len(message)} characters)"


_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]/-]*): ")


def problems_of(exc: BaseException) -> list[FieldProblem]:
    """The field problems behind a refusal: a job file's own list, or the one its message names."""
    cause = exc.__cause__
    problems = getattr(cause, "problems", None)
    if problems:
        return list(problems)
    text = str(exc)
    m = _FIELD.match(text)
    return [FieldProblem(m.group(1), text[m.end():])] if m else []


def both_names(message: str) -> str:
    """A message that leads with a job file's field, with the proto's path after it where the two differ.

    `federator submit -f` users read the file's spelling (`spec.resources.nvidia.com/gpu`); a
    client written from the proto files built `spec.resources.accelerator_milli`, and should not
    have to read the status details to learn which of its fields is meant."""
    m = _FIELD.match(message)
    if m is None:
        return message
    field = m.group(1)
    proto = proto_field(field)
    if proto == field or proto == "spec" or not _says_more(field, proto):
        return message
    return f"{field} ({proto}): {message[m.end():]}"


def _says_more(field: str, proto: str) -> bool:
    """Whether the proto's path tells a proto client more than the job file's. Not where it is the file's name in
    snake_case (`spec.acceleratorModels[0]` is `accelerator_models[0]`: the proto's own JSON name is the file's),
    nor where it names a JSON text (`spec.pod_template_json`, `workload_json`) whose inner path the file's name
    gives (`spec.template.spec.hostNetwork`): users read such messages, and `(spec.pod_template_json)` after
    every template field named a field no job file has (outside QA, F3). The status details carry it still."""
    if proto.endswith(("pod_template_json", "workload_json")) or field.startswith("spec.gpuModels"):
        return False  # gpuModels: only a job file has the old name, and its reader wants no proto's
    return _SNAKE.sub(lambda m: "_" + m.group(0).lower(), field) != proto


_SNAKE = re.compile(r"[A-Z]")


def _description(field: str, problem: str) -> str:
    """What is wrong with `field`, without the field's name before it: List, Scale and ClusterService built their
    violations from a whole message, and a client showing `field: description` printed "page_token: page_token:
    not a token" (outside QA, portal m3). A longer path inside the field (`spec.template.spec.hostNetwork: ...`
    on `spec.template`) says more, and stays."""
    m = _FIELD.match(problem)
    if m is not None and (m.group(1) == field or m.group(1).endswith("." + field)):
        return problem[m.end():]
    return problem


def bad_request(message: str, problems: Iterable[FieldProblem]) -> grpc.Status:
    """An INVALID_ARGUMENT status carrying a BadRequest with one violation per bad field."""
    found = tuple(problems)
    detail = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field=proto_field(p.field), description=_description(p.field,
                                                                                                        p.problem))
        for p in found])
    if found and message == "; ".join(str(p) for p in found):
        message = "; ".join(both_names(str(p)) for p in found)  # every field in both names, not the first
    else:
        message = both_names(message)
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=cut(message))
    status.details.add().Pack(detail)
    return rpc_status.to_status(status)


RETRY_AFTER_METADATA = "retry-after"
"""Seconds, on a call refused by back-pressure (as HTTP's Retry-After); RetryInfo says the same."""

ERROR_DOMAIN = "federator.io"
"""google.rpc.ErrorInfo.domain of every reason below."""


class Exhausted(StrEnum):
    """Why a call was RESOURCE_EXHAUSTED: the ErrorInfo.reason a client branches on (jobs.proto, "Calling this API").

    The code alone has six meanings that want opposite answers, and a client told them apart by the message's
    words (outside QA, portal M3): a generic "retry RESOURCE_EXHAUSTED" looped for ever on an oversized Submit."""

    MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"  # over --max-message-bytes: never retry it as it is
    BACK_PRESSURE = "BACK_PRESSURE"  # a pending cap or byte budget: retry after RetryInfo, same request_id
    WATCH_FELL_BEHIND = "WATCH_FELL_BEHIND"  # the stream was ended: watch again now
    WATCH_LIMIT = "WATCH_LIMIT"  # the caller holds --max-watches-per-user streams: end one first
    WATCHES_FULL = "WATCHES_FULL"  # the federator holds --max-watches streams (watch_seats.py): retry after RetryInfo
    LOGS_RATE = "LOGS_RATE"  # Logs more often than one user may (server/log_follow.py): retry after RetryInfo
    LOG_FOLLOWS_FULL = "LOG_FOLLOWS_FULL"  # --max-log-follows(-per-user) follows open: retry after RetryInfo
    BUSY = "BUSY"  # too many calls in flight, the call was shed unread (server/shedding.py): retry after RetryInfo


class PressedLimit(StrEnum):
    """ErrorInfo.metadata["limit"] of a BACK_PRESSURE refusal: which cap or budget the Submit met."""

    QUEUE = "queue"  # the job's queue's pending cap
    USER = "user"  # the caller's pending cap over every queue
    FEDERATOR = "federator"  # every pending job, or the last tenth kept for small holders
    USER_BYTES = "user-bytes"  # the owner's unfinished jobs' byte budget
    FEDERATOR_BYTES = "federator-bytes"  # every unfinished job's byte budget
    DELEGATE = "delegate"  # the pending-job budget of the delegate that sent the call (metadata "delegate")
    DELEGATE_BYTES = "delegate-bytes"  # the delegate's budget of unfinished jobs' bytes


class Refused(StrEnum):
    """Why a call was PERMISSION_DENIED or UNAUTHENTICATED: the ErrorInfo.reason a client branches on (jobs.proto,
    "Calling this API"), one per rule of the tenancy policy (security/authz.py `Rule`, and the cluster API's
    `admin` and `provider`) and per kind of credential refusal.

    Why: a portal must show "you may not use queue globex" to its user and page its own operators for "the
    portal's delegate grant is wrong"; only the words told them apart (outside portal QA, m3 and N4). The rule's
    own name, as the audit line writes it, is ErrorInfo.metadata["rule"]."""

    NOT_OWNER = "NOT_OWNER"  # rule owner: not the caller's job (a Watch of one job they no longer may see)
    GROUP_VIEW_ONLY = "GROUP_VIEW_ONLY"  # rule group: a group's job the caller may see, not manage (jobs: view)
    QUEUE_ACCESS = "QUEUE_ACCESS"  # rule queue-access: the queue's access list does not admit the caller
    UNDECLARED_QUEUE = "UNDECLARED_QUEUE"  # rule undeclared-queue: a queue nobody declared, admins only
    QUEUE_NAMESPACES = "QUEUE_NAMESPACES"  # rule queue-namespaces: the namespace is not the queue's (standalone)
    NAMESPACE_SELECTOR = "NAMESPACE_SELECTOR"  # rule namespace-selector (Kubernetes mode): the Queue's selector
    RESERVED_NAMESPACE = "RESERVED_NAMESPACE"  # rule reserved-namespace (Kubernetes mode): kube-*, the federator's
    DELEGATE = "DELEGATE"  # rule delegate: the caller may not act for that user or assert those groups
    # rule admin: Cordon, Uncordon, Drain, Forget, or the Release of an admin's hold, by a caller not in tenancy.admins
    ADMIN_ONLY = "ADMIN_ONLY"
    PROVIDER_SCOPE = "PROVIDER_SCOPE"  # rule provider: a cluster certificate's Drain/Uncordon outside its provider
    CREDENTIAL_REVOKED = "CREDENTIAL_REVOKED"  # the revocation list (or a provider's) names the credential
    CREDENTIAL_KIND = "CREDENTIAL_KIND"  # a credential of the wrong kind for the service (a cluster's on JobService)
    UNAUTHENTICATED = "UNAUTHENTICATED"  # no usable credential (UNAUTHENTICATED): none, unparsable, unknown token


_RULE_REASONS: Mapping[str, Refused] = {
    "owner": Refused.NOT_OWNER, "group": Refused.GROUP_VIEW_ONLY, "queue-access": Refused.QUEUE_ACCESS,
    "undeclared-queue": Refused.UNDECLARED_QUEUE, "queue-namespaces": Refused.QUEUE_NAMESPACES,
    "namespace-selector": Refused.NAMESPACE_SELECTOR, "reserved-namespace": Refused.RESERVED_NAMESPACE,
    "delegate": Refused.DELEGATE, "admin": Refused.ADMIN_ONLY, "provider": Refused.PROVIDER_SCOPE,
}


def refused_for(rule: str) -> Refused:
    """The ErrorInfo reason of a refusal by `rule` (a `Rule` value, or the cluster API's `admin`/`provider`)."""
    return _RULE_REASONS[rule]


def denied(message: str, reason: Refused, *, metadata: Mapping[str, str] | None = None,
           code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED) -> grpc.Status:
    """A PERMISSION_DENIED (or UNAUTHENTICATED) status carrying a google.rpc.ErrorInfo: its reason, and metadata
    naming the object refused (each value cut to 253 characters: what the caller sent or may see, never more)."""
    status = status_pb2.Status(code=code.value[0], message=cut(message))
    status.details.add().Pack(error_details_pb2.ErrorInfo(
        reason=reason.value, domain=ERROR_DOMAIN, metadata={k: v[:253] for k, v in (metadata or {}).items()}))
    return rpc_status.to_status(status)


def exhausted(message: str, reason: Exhausted, *, retry_after: float | None = None,
              metadata: Mapping[str, str] | None = None) -> grpc.Status:
    """A RESOURCE_EXHAUSTED status whose details say which kind (google.rpc.ErrorInfo), and, for back-pressure,
    when to come back (google.rpc.RetryInfo, and the `retry-after` trailer clients read before this existed)."""
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=cut(message))
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason.value, domain=ERROR_DOMAIN,
                                                          metadata=dict(metadata or {})))
    trailer: tuple[tuple[str, str], ...] = ()
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after * 1e9))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        trailer = ((RETRY_AFTER_METADATA, f"{retry_after:g}"),)
    built = rpc_status.to_status(status)
    return _Status(built.code, built.details, (*trailer, *built.trailing_metadata))



class _Status(grpc.Status):
    """A grpc.Status with trailing metadata of our choosing (grpc.Status is an abstract attribute holder)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[tuple[str, object], ...]) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


__all__ = ["ERROR_DOMAIN", "MAX_MESSAGE_CHARS", "RETRY_AFTER_METADATA", "Exhausted", "PressedLimit", "Refused",
           "bad_request", "both_names", "cut", "denied", "exhausted", "problems_of", "proto_field", "refused_for"]
