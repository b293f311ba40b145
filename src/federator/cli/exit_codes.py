"""The exit statuses of every `federator` command, in one table, so a `set -e` script can tell "retry later"
from "fix your input" without reading stderr (outside QA, HPC H10: a job not found, a refused submit and an
unreachable federator all exited 1).

0, 1 and 2 keep the meaning they had (a script that tested them still works): 1 is still every failure not
listed below. Commands print their error line and return one of these; a gRPC failure is mapped here
(`for_rpc`), never per command. The table is docs/users.md's, "Exit status".
"""

from __future__ import annotations

from enum import IntEnum

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from federator.server.errors import Exhausted


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    """Refused or failed: the federator said no (ALREADY_EXISTS, INVALID_ARGUMENT, PERMISSION_DENIED,
    FAILED_PRECONDITION, UNAUTHENTICATED, a message too large, an internal error), `wait` saw a job that can no
    longer be in the state, `submit --strict` met a warning. The same command gets the same answer: change it."""
    USAGE = 2
    """Bad flags, a bad job file or bad TLS files: refused by the CLI itself, nothing was sent."""
    NOT_FOUND = 3
    """The job or cluster named is not there (or not one the caller may see)."""
    UNAVAILABLE = 4
    """No answer: the federator is down, restarting, unreachable or busy (UNAVAILABLE, DEADLINE_EXCEEDED, a
    CANCELLED it dropped unread, a back-pressure, shed or watch-seat RESOURCE_EXHAUSTED), or its store took no
    write. The same command may succeed later; nothing, or only part of it (the line says how far it got), was done."""
    TIMED_OUT = 5
    """`wait --timeout` passed before the jobs were in the state; they may still get there."""


_LATER = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED})
"""CANCELLED too: the CLI cancels no call it waits on, so it is a loaded federator's gRPC that dropped the call
unread (jobs.proto, "Calling this API"): nothing was done."""
_BUSY_REASONS = frozenset({Exhausted.BACK_PRESSURE.value, Exhausted.WATCHES_FULL.value,
                           Exhausted.WATCH_FELL_BEHIND.value, Exhausted.LOGS_RATE.value,
                           Exhausted.LOG_FOLLOWS_FULL.value, Exhausted.BUSY.value})
"""RESOURCE_EXHAUSTED reasons (jobs.proto, "Retries") a later try of the same request gets past; the others
(MESSAGE_TOO_LARGE, WATCH_LIMIT, gRPC's own size refusal) want the request or the caller changed."""


def for_rpc(err: grpc.RpcError) -> Exit:
    """The exit status of a failed call."""
    code = err.code() if hasattr(err, "code") else None
    if code in _LATER:
        return Exit.UNAVAILABLE
    if code is grpc.StatusCode.NOT_FOUND:
        return Exit.NOT_FOUND
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and error_reason(err) in _BUSY_REASONS:
        return Exit.UNAVAILABLE
    return Exit.FAILED


def error_reason(err: grpc.RpcError) -> str:
    """The google.rpc.ErrorInfo reason a status carries in its details ('' when none): what the contract says to
    branch on, never the message's words."""
    try:
        status = rpc_status.from_call(err)  # type: ignore[arg-type]
    except (AttributeError, ValueError):
        return ""
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""
