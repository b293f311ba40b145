"""Submit calls: each job's Submit sent in turn, a transient failure (UNAVAILABLE, DEADLINE_EXCEEDED; a CANCELLED
the CLI did not cause, a call a loaded federator's gRPC dropped unread; RESOURCE_EXHAUSTED `BUSY`, a call it shed
unread: jobs.proto, "Calling this API") retried with backoff, no sooner than the RetryInfo asks, and the same
request id (cli/request_ids.py), so a retry of a submission the federator did store
returns that job, never a second one; a federator that does not answer in time is `NoAnswer`. The Python client
API of submission (`submit_specs`, `submit_replies`) and what `federator submit` streams (`iter_submit`)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli import calls
from federator.cli.calls import Target
from federator.cli.exit_codes import error_reason
from federator.cli.request_ids import request_id_for
from federator.model import Job, JobSpec
from federator.server.errors import Exhausted

TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED})
"""Codes after which the same Submit, with its request id, may succeed. CANCELLED: the CLI cancels no call it
waits on (an interrupt ends the command), so a CANCELLED is the federator's gRPC dropping it unread (since 0.18.0
the contract says to retry it)."""
SHED = Exhausted.BUSY.value
"""The one RESOURCE_EXHAUSTED reason retried here: the call was shed unread. BACK_PRESSURE (a pending cap) is
not: a cap stays full for longer than a command should wait, so it exits 4 ("later") and says which cap."""
SUBMIT_ATTEMPTS = 8  # with the backoff below, about 15 s of retrying: long enough for a federator restart
log = logging.getLogger("federator.cli")


def transient(exc: BaseException) -> bool:
    """A failure after which the same request may succeed: the federator was away, slow or too busy to read it."""
    code = exc.code() if isinstance(exc, grpc.RpcError) and hasattr(exc, "code") else None
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return error_reason(exc) == SHED  # type: ignore[arg-type]
    return code in TRANSIENT


def asked_delay(exc: BaseException | None) -> float:
    """The google.rpc.RetryInfo retry_delay a refusal carries (seconds; 0 when none): the soonest to try again."""
    if not isinstance(exc, grpc.RpcError):
        return 0.0
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except (AttributeError, ValueError):
        return 0.0
    for detail in status.details if status is not None else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return max(0.0, min(60.0, info.retry_delay.ToTimedelta().total_seconds()))
    return 0.0


class _Backoff:
    """Exponential backoff with jitter, never sooner than the last refusal's RetryInfo asks."""

    def __init__(self, max_backoff: float) -> None:
        self._exponential = wait_exponential_jitter(multiplier=0.2, max=max_backoff, jitter=0.2)

    def __call__(self, state: RetryCallState) -> float:
        asked = asked_delay(state.outcome.exception() if state.outcome is not None else None)
        return max(float(self._exponential(state)), asked + random.uniform(0.0, 0.2 * asked))


def submit_specs(target: Target, specs: list[JobSpec], *, attempts: int = SUBMIT_ATTEMPTS,
                 max_backoff: float = 4.0, run_again: bool = False, patience: float | None = None) -> list[Job]:
    """Submit each spec, retrying transient failures with the spec's request id; the jobs, in order.

    A retry of a submission the federator did store returns that job (same
    job_id), even if it has finished since. Other errors are raised at once.
    """
    return [r.job for r in submit_replies(target, specs, attempts=attempts, max_backoff=max_backoff,
                                          run_again=run_again, patience=patience)]


@dataclass(frozen=True, slots=True)
class Submitted:
    """One Submit's answer: the job, whether it was there before (its request had been seen), and the
    federator's warnings about it (SubmitResponse.warnings)."""

    job: Job
    replayed: bool = False
    warnings: tuple[str, ...] = ()
    array_id: str = ""  # an array's Submit (SubmitResponse.array_id, cli/submit_array.py): its id and every task
    array_jobs: tuple[Job, ...] = ()


class NoAnswer(grpc.RpcError):
    """The federator did not answer a Submit, retries included: an RpcError of the last try's code and details,
    whose str() says for how long and how many tries."""

    def __init__(self, server: str, seconds: float, tries: int, last: grpc.RpcError) -> None:
        detail = last.details() if hasattr(last, "details") else str(last)
        if _from_transport(detail):
            said = f"no answer from {server} in {seconds:.0f} s ({tries} tries; last: {detail})"
        else:  # the federator answered, every time, that it cannot take it now: "no answer" sent users to the network
            code = last.code().name if hasattr(last, "code") else "UNAVAILABLE"
            said = (f"{server} answered {code} for {seconds:.0f} s ({tries} tries; last: {detail}); "
                    "nothing was stored: submit again later")
        super().__init__(said)
        self.server = server
        self.last = last

    def code(self) -> grpc.StatusCode:
        return self.last.code()  # type: ignore[attr-defined,no-any-return]

    def details(self) -> str:
        return self.last.details()  # type: ignore[attr-defined,no-any-return]


_TRANSPORT_WORDS = ("failed to connect", "connection refused", "socket closed", "connection reset", "dns resolution",
                    "deadline exceeded", "goaway", "broken pipe", "handshake", "connect failed", "no such host",
                    "endpoint is draining", "stream removed")


def _from_transport(detail: str) -> bool:
    """Whether an UNAVAILABLE came from the transport (no server, a dropped connection), not the federator's own
    words (a full disk: "job store: database or disk is full")."""
    lowered = detail.lower()
    return not detail or any(word in lowered for word in _TRANSPORT_WORDS)


def submit_requests(specs: list[JobSpec], *, run_again: bool = False) -> list[jobs_pb2.SubmitRequest]:
    """The Submit of each spec (RequestIdError for a spec whose request id contradicts `run_again`)."""
    return [jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(s), request_id=request_id_for(s, run_again=run_again),
                                   run_again=run_again) for s in specs]


def iter_submit(target: Target, requests: Iterable[jobs_pb2.SubmitRequest], *, attempts: int = SUBMIT_ATTEMPTS,
                max_backoff: float = 4.0, patience: float | None = None) -> Iterator[Submitted]:
    """Send each Submit in turn, yielding its answer as it comes: a refusal (grpc.RpcError) or a federator
    that does not answer in `attempts` tries or, if given, `patience` seconds (NoAnswer) ends it there. The
    CLI gives SUBMIT_PATIENCE (--timeout); a caller without it waits as long as its attempts take."""
    limit = float("inf") if patience is None else patience
    opts = calls.options(target)
    channel = opts.channel()
    try:
        for request in requests:
            start = time.monotonic()
            tries = 0
            last: grpc.RpcError | None = None
            try:
                for attempt in Retrying(stop=stop_after_attempt(attempts) | stop_after_delay(limit),
                                        retry=retry_if_exception(transient),
                                        wait=_Backoff(max_backoff),
                                        reraise=True):
                    with attempt:
                        tries += 1
                        left = limit - (time.monotonic() - start)
                        try:
                            reply = jobs_pb2_grpc.JobServiceStub(channel).Submit(
                                request, timeout=max(0.1, min(calls.CALL_TIMEOUT, left)))
                        except grpc.RpcError as err:
                            if transient(err):  # a fresh channel for the retry: no reconnect backoff carried over
                                last = err
                                log.warning("submit %s: %s; retrying with request id %s", request.spec.name,
                                            err.code().name, request.request_id)  # type: ignore[attr-defined]
                                channel.close()
                                channel = opts.channel()
                            raise
            except grpc.RpcError as err:
                if transient(err) and last is not None:
                    raise NoAnswer(opts.server, time.monotonic() - start, tries, err) from err
                raise
            yield Submitted(convert.job_from_pb(reply.job), reply.replayed, tuple(reply.warnings), reply.array_id,
                            tuple(convert.job_from_pb(t) for t in reply.array_jobs))
    finally:
        channel.close()


def submit_replies(target: Target, specs: list[JobSpec], *, attempts: int = SUBMIT_ATTEMPTS,
                   max_backoff: float = 4.0, run_again: bool = False,
                   patience: float | None = None) -> list[Submitted]:
    """As `submit_specs`, each job with the rest of its answer (`Submitted`)."""
    return list(iter_submit(target, submit_requests(specs, run_again=run_again), attempts=attempts,
                            max_backoff=max_backoff, patience=patience))


__all__ = ["SUBMIT_ATTEMPTS", "TRANSIENT", "NoAnswer", "Submitted", "iter_submit", "submit_replies",
           "submit_requests", "submit_specs", "transient"]
