"""`federator submit | get | cancel | scale | watch`: talk to a running federator's JobService.

Every helper takes a `Target`: a ClientOptions (address and credentials), or
just an address, in which case the credentials come from the environment
(FEDERATOR_CERTS_DIR / FEDERATOR_CA, FEDERATOR_CERT, FEDERATOR_KEY,
FEDERATOR_TOKEN, or FEDERATOR_INSECURE=1).

Submissions are safe to retry, within one invocation and across them: a
spec's request id is the one its file carries (`federator.io/request-id`) or
else one derived from its content (namespace, name and spec), so a transient
failure (UNAVAILABLE, DEADLINE_EXCEEDED) retried with the same id, or the same
file submitted again after the CLI was killed, never makes a second job. A
finished job keeps its name; `--run-again` asks for a new run of the same file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential_jitter

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.catalog import CatalogError, client_catalog, client_view
from federator.cli import bulk_cancel, job_list
from federator.cli.certs import add_tls_arguments, client_options
from federator.cli.cluster_view import summary_from_pb
from federator.cli.exit_codes import Exit, for_rpc
from federator.cli.job_document import job_document
from federator.cli.output import cluster_rows, dump, job_rows, table
from federator.cli.written_form import as_written, written_resources
from federator.jobfile import (
    REQUEST_ID_ANNOTATION,
    FieldProblem,
    JobFileError,
    job_paths,
    load_job_files,
    spec_to_document,
    with_old_names,
)
from federator.jobsource import source_name
from federator.listen import server_address
from federator.model import Job, JobSpec
from federator.security.limits import MAX_MESSAGE_BYTES_CEILING, Limits
from federator.security.namespaces import DEFAULT_NAMESPACE
from federator.security.pki import CertsDir
from federator.security.tls import ClientOptions, TlsError, TlsFiles, dial_hint, user_files
from federator.server.job_listing import Query
from federator.server.paging import MAX_PAGE_SIZE
from federator.termtext import cell

DEFAULT_SERVER = os.environ.get("FEDERATOR_SERVER", "127.0.0.1:7070")
Target = str | ClientOptions
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
SUBMIT_ATTEMPTS = 8  # with the backoff below, about 15 s of retrying: long enough for a federator restart
SUBMIT_PATIENCE = 15.0
"""Seconds one job's Submit may take, its retries included: a federator that does not answer (or is away) for
this long is reported as not answering, and nothing more is sent."""
CALL_TIMEOUT = 10.0  # seconds one get/cancel call (one page of `get jobs`) may take; they are not retried
WATCH_PATIENCE = 60.0
"""Seconds `federator watch` waits for a federator that went away (a restart) to come back before it gives up."""
MAX_REQUEST_BYTES = Limits().max_message_bytes
"""The largest Submit the CLI sends unless told (--max-request-bytes): the federator's default
--max-message-bytes (1 MiB). A job is a few KiB; one this big would be refused by a federator on its
defaults, and by Kubernetes' object size in its mode."""
log = logging.getLogger("federator.cli")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("submit", help="submit FederatedJob files")
    s.add_argument("-f", "--filename", type=Path, action="append", required=True,
                   help="job file or folder of job files (repeatable), or - for standard input; every file is "
                        "checked before any job is sent, so one bad file sends none")
    s.add_argument("--timeout", type=_seconds, default=SUBMIT_PATIENCE, metavar="SECONDS",
                   help="how long each job's submission may take, retries included, before the federator is "
                        "reported as not answering (default %(default)s)")
    s.add_argument("--run-again", action="store_true",
                   help="run a job whose earlier run has finished again, under the same name (a new job; without "
                        "it, submitting the same file again returns the job it made)")
    s.add_argument("--strict", action="store_true",
                   help="a warning is an error: a job the federator warns about (it can never run as the fleet "
                        "stands, a model no member has, an unknown template key) is cancelled at once and the "
                        "submit stops there with exit 1, as at a refusal; the jobs before it stay submitted")
    s.add_argument("--max-request-bytes", type=_request_bytes, default=MAX_REQUEST_BYTES, metavar="BYTES",
                   help="the largest job the CLI sends: the federator's --max-message-bytes, if its operator "
                        "raised it (default %(default)s)")
    s.add_argument("--hold", action="store_true",
                   help="submit the jobs held: each waits, never placed, until `federator release` (a job file's "
                        "spec.held: true does the same for its job; cli/hold.py)")
    s.add_argument("--accelerator-catalog", type=Path, metavar="FILE",
                   help="the federator operator's accelerator catalog file, so job files may name the resources of "
                        "vendors it adds; without it the CLI leaves vendors it does not know to the federator")
    _server(s)
    s.set_defaults(func=_submit)

    g = sub.add_parser("get", help="list jobs or clusters")
    g.add_argument("what", choices=["jobs", "job", "clusters"], help="what to list")
    g.add_argument("name", nargs="?", help="one job: its id, namespace/name, or its name (the newest job of that "
                   "name; a name in several namespaces is refused, listing them); or one cluster, by its name")
    g.add_argument("-o", "--output", choices=["table", "wide", "json", "yaml"], default="table")
    g.add_argument("--queue", default="", help="only jobs of this queue")
    g.add_argument("--page-size", type=_page_size, default=0, metavar="N",
                   help="fetch jobs (or clusters) N at a time, 1 to 1000 (default: the server's, 500)")
    job_list.add_arguments(g)
    _server(g)
    g.set_defaults(func=_get)

    c = sub.add_parser("cancel", help="cancel a job, or a queue's jobs (--queue)")
    c.add_argument("job", nargs="?", default="", help="job id, namespace/name, or name (a name in several "
                                                       "namespaces is refused, listing them)")
    bulk_cancel.add_arguments(c)
    _server(c)
    c.set_defaults(func=_cancel)

    sc = sub.add_parser("scale", help="set the replica count of an inference job; its running replicas keep serving",
                        description="Set the replica count of an inference job that has not ended. Scaling up "
                                    "keeps every running placement and places the difference; scaling down shrinks "
                                    "placements in place where the member's agent can resize (the others keep "
                                    "serving), and stops whole placements on members whose agent cannot (one may "
                                    "be replaced by a smaller one). Training jobs (a gang's size is fixed) are "
                                    "refused.")
    sc.add_argument("job", help="job id, namespace/name, or name (a name in several namespaces is refused, "
                                "listing them)")
    sc.add_argument("--replicas", type=int, required=True, metavar="N",
                    help="the new spec.replicas: from 1 to the federator's limit, no fewer than the job's "
                         "spec.regions.minRegions")
    _server(sc)
    sc.set_defaults(func=_scale)

    w = sub.add_parser("watch", help="stream job changes")
    w.add_argument("job", nargs="?", default="", help="one job (default: every job)")
    w.add_argument("--reconnect-for", type=_seconds, default=WATCH_PATIENCE, metavar="SECONDS",
                   help="how long to keep trying to reconnect to a federator that went away (a restart) before "
                        "giving up (default %(default)s)")
    _server(w)
    w.set_defaults(func=_watch)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds from 0 to 3600, got {value[:40]!r}")
    return seconds


def _whole(what: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`, refused as `expected WHAT from LOW to HIGH`."""
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = low - 1
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {low} to {high}, got {value[:40]!r}")
        return n
    return parse


_page_size = _whole("a number of jobs", 1, MAX_PAGE_SIZE)  # the federator serves at most this; more overflowed int32
_request_bytes = _whole("bytes", 1024, MAX_MESSAGE_BYTES_CEILING)


def _server(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default=DEFAULT_SERVER, type=server_address,
                   help="federator gRPC address (default %(default)s)")
    add_tls_arguments(p, role="client")


def options_from_env(server: str) -> ClientOptions:
    """Credentials for `server` from FEDERATOR_* environment variables."""
    env = os.environ
    token = env.get("FEDERATOR_TOKEN", "")
    if env.get("FEDERATOR_INSECURE") == "1":
        return ClientOptions(server=server, insecure=True)
    tls: TlsFiles | None = None
    if env.get("FEDERATOR_CERTS_DIR"):
        certs = CertsDir(Path(env["FEDERATOR_CERTS_DIR"]))
        tls = TlsFiles(certs.ca_cert) if token else user_files(certs, env.get("FEDERATOR_USER", "admin"))
    elif env.get("FEDERATOR_CA"):
        cert, key = env.get("FEDERATOR_CERT"), env.get("FEDERATOR_KEY")
        tls = TlsFiles(Path(env["FEDERATOR_CA"]), Path(cert) if cert else None, Path(key) if key else None)
    return ClientOptions(server=server, tls=tls, token=token)


def options(target: Target) -> ClientOptions:
    return target if isinstance(target, ClientOptions) else options_from_env(target)


@contextmanager
def connect(target: Target) -> Iterator[tuple[jobs_pb2_grpc.JobServiceStub, jobs_pb2_grpc.ClusterServiceStub]]:
    with options(target).channel() as channel:
        yield jobs_pb2_grpc.JobServiceStub(channel), jobs_pb2_grpc.ClusterServiceStub(channel)


def _hint(err: grpc.RpcError, args: argparse.Namespace | None) -> str:
    code = err.code() if hasattr(err, "code") else None
    detail = err.details() if hasattr(err, "details") else str(err)
    if code is not grpc.StatusCode.UNAVAILABLE or args is None:
        return ""
    try:
        target = client_options(args)
        return dial_hint(detail or "", target.server, tls=not target.insecure,
                         token=bool(target.token) and (target.tls is None or target.tls.cert is None))
    except TlsError:
        return ""


def _fail(err: grpc.RpcError | TlsError, args: argparse.Namespace | None = None, *, prefix: str = "",
          seconds: float | None = None, said: Callable[[str], str] = str) -> int:
    """Print a failed call as `error: ...`, its exit status by its code (cli/exit_codes.py), or bad TLS flags
    (exit 2). A call this client gave up on
    after `seconds` (its own deadline, not a status the federator sent) is said as submit says it, `no answer
    from HOST:PORT in N s` (N: `seconds`, default CALL_TIMEOUT): a bare "Deadline Exceeded" named neither the
    address nor the wait (outside QA F13)."""
    if isinstance(err, TlsError):
        print(f"error: {prefix}{err}", file=sys.stderr)
        return Exit.USAGE
    code = err.code() if hasattr(err, "code") else None
    detail = err.details() if hasattr(err, "details") else str(err)
    detail = said(detail) if isinstance(detail, str) else detail  # said: in the words the user wrote
    if code is grpc.StatusCode.DEADLINE_EXCEEDED and detail == "Deadline Exceeded" and args is not None:
        waited = CALL_TIMEOUT if seconds is None else seconds
        print(f"error: {prefix}no answer from {args.server} in {waited:g} s (last: {detail})", file=sys.stderr)
        return Exit.UNAVAILABLE
    hint = _hint(err, args)
    print(f"error: {prefix}{detail} ({code.name if code else 'unknown'})" + (f"; hint: {hint}" if hint else ""),
          file=sys.stderr)
    return Exit.FAILED if hint else for_rpc(err)  # a hint names a setup mistake (plaintext, a name): no retry cures it


def read_specs(paths: list[Path]) -> list[JobSpec]:
    """Parse every file first: nothing is submitted if any file is bad, or if two jobs share a name."""
    return [spec for spec, _ in read_sources(paths)]


def read_sources(paths: list[Path], *, held: list[bool] | None = None) -> list[tuple[JobSpec, str]]:
    """Every job of the files named, with where it came from (`FILE`, or `FILE: document N (NAME)` for a file
    of several), all parsed before any is submitted: nothing is sent if any file is bad, or if two jobs surely
    share a name.

    A namespace holds one job of a name, so the second of two would be refused by the federator after the
    first was submitted: half a submission, for a mistake visible in the files. Surely: two jobs that name no
    namespace (or `default`) but different queues are not twins, since under a multi-tenant policy each goes in
    its queue's namespace (security/namespaces.py) and both are accepted; under a single-tenant one the
    federator refuses the second itself (outside QA: the CLI refused a file the federator would take whole)."""
    out: list[tuple[JobSpec, str]] = []
    first: dict[tuple[str, ...], str] = {}
    twins: list[FieldProblem] = []
    for path in job_paths(paths):
        found = load_job_files(path, held=held)  # each job's spec.held, if asked (cli/hold.py)
        for i, spec in enumerate(found):
            name = source_name(path)  # `-`: `<stdin>`
            where = name if len(found) == 1 else f"{name} document {i + 1}"
            # where the job lands: its namespace, or, naming none, its queue's (whichever that is)
            key = (spec.namespace, spec.name) if spec.namespace != DEFAULT_NAMESPACE else \
                (spec.namespace, spec.name, spec.queue)
            if key in first:
                same = "" if spec.namespace != DEFAULT_NAMESPACE else f" in queue {spec.queue}"
                twins.append(FieldProblem(f"{where}: metadata.name", f"{spec.namespace}/{spec.name}{same} is also "
                                          f"the name of {first[key]}; a namespace holds one job of a name"))
            else:
                first[key] = where
            out.append((spec, name if len(found) == 1 else f"{name}: document {i + 1} ({spec.name})"))
    if twins:
        raise JobFileError(twins)
    return out


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdError(ValueError):
    """A job file's own request id and --run-again contradict each other."""


def request_id_for(spec: JobSpec, *, run_again: bool = False) -> str:
    """The request id of one spec: the file's own (annotation), or one derived from the spec's content.

    Derived from the content (namespace, name and the whole spec), the same
    file submitted again, say after the CLI was killed between the federator
    storing the job and the reply, is the same request and returns the job it
    made. With `run_again` the id is new: this invocation is a new request.
    A renamed field is hashed by its old name (`with_old_names`), so a CLI
    upgraded between a killed submit and its retry derives the same id.

    Anyone can compute the id of a file they can read; the federator keeps each
    owner's ids apart (server/intake.py), so another tenant's use of it names
    another job. The caller's identity is not mixed in: the federator's scope
    already keeps tenants apart, the CLI does not always know the identity (a
    bearer token names no user client-side), and a new derivation would turn a
    submit killed before a CLI upgrade and retried after it into a second job.
    """
    carried = spec.annotation(REQUEST_ID_ANNOTATION)
    if carried:
        if run_again:
            raise RequestIdError(f"--run-again: {spec.namespace}/{spec.name} carries {REQUEST_ID_ANNOTATION}="
                                 f"{carried[:80]!r}, which names one run; remove it to run the job again")
        return carried
    if run_again:
        return f"cli-{new_request_id()}"
    doc = with_old_names(spec_to_document(spec))  # hashed by the names fields had when ids were first derived
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return f"cli-{hashlib.sha256(canonical.encode()).hexdigest()[:40]}"


def transient(exc: BaseException) -> bool:
    """A failure after which the same request may succeed: the federator was away or slow."""
    code = exc.code() if isinstance(exc, grpc.RpcError) and hasattr(exc, "code") else None
    return code in TRANSIENT


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


class NoAnswer(grpc.RpcError):
    """The federator did not answer a Submit, retries included: an RpcError of the last try's code and details,
    whose str() says for how long and how many tries."""

    def __init__(self, server: str, seconds: float, tries: int, last: grpc.RpcError) -> None:
        detail = last.details() if hasattr(last, "details") else str(last)
        if _from_transport(detail):
            said = f"no answer from {server} in {seconds:.0f} s ({tries} tries; last: {detail})"
        else:  # the federator answered, every time, that it cannot take it now: "no answer" sent users to the network
            said = (f"{server} answered UNAVAILABLE for {seconds:.0f} s ({tries} tries; last: {detail}); "
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


def oversized(request: jobs_pb2.SubmitRequest, limit: int = MAX_REQUEST_BYTES) -> str:
    """Why a Submit is too big to send ('' if it is not)."""
    size = request.ByteSize()
    if size <= limit:
        return ""
    said = f"{limit} ({limit >> 20} MiB)" if limit % (1 << 20) == 0 else str(limit)
    whose = ("its --max-message-bytes default; if its operator raised it, say so with --max-request-bytes"
             if limit == MAX_REQUEST_BYTES else "--max-request-bytes")
    return (f"the job comes to {size} bytes, more than {said}, the federator's limit for one request ({whose}); "
            "a job is a few KiB: move large values (scripts, data) out of the job, into its image or a volume")


def iter_submit(target: Target, requests: Iterable[jobs_pb2.SubmitRequest], *, attempts: int = SUBMIT_ATTEMPTS,
                max_backoff: float = 4.0, patience: float | None = None) -> Iterator[Submitted]:
    """Send each Submit in turn, yielding its answer as it comes: a refusal (grpc.RpcError) or a federator
    that does not answer in `attempts` tries or, if given, `patience` seconds (NoAnswer) ends it there. The
    CLI gives SUBMIT_PATIENCE (--timeout); a caller without it waits as long as its attempts take."""
    limit = float("inf") if patience is None else patience
    opts = options(target)
    channel = opts.channel()
    try:
        for request in requests:
            start = time.monotonic()
            tries = 0
            last: grpc.RpcError | None = None
            try:
                for attempt in Retrying(stop=stop_after_attempt(attempts) | stop_after_delay(limit),
                                        retry=retry_if_exception(transient),
                                        wait=wait_exponential_jitter(multiplier=0.2, max=max_backoff, jitter=0.2),
                                        reraise=True):
                    with attempt:
                        tries += 1
                        left = limit - (time.monotonic() - start)
                        try:
                            reply = jobs_pb2_grpc.JobServiceStub(channel).Submit(
                                request, timeout=max(0.1, min(CALL_TIMEOUT, left)))
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
            yield Submitted(convert.job_from_pb(reply.job), reply.replayed, tuple(reply.warnings))
    finally:
        channel.close()


def submit_replies(target: Target, specs: list[JobSpec], *, attempts: int = SUBMIT_ATTEMPTS,
                   max_backoff: float = 4.0, run_again: bool = False,
                   patience: float | None = None) -> list[Submitted]:
    """As `submit_specs`, each job with the rest of its answer (`Submitted`)."""
    return list(iter_submit(target, submit_requests(specs, run_again=run_again), attempts=attempts,
                            max_backoff=max_backoff, patience=patience))


def list_jobs(target: Target, queue: str = "", *, page_size: int = 0, query: Query | None = None) -> list[Job]:
    """Every job (of `queue`, or of `query`), fetched a page at a time (a page is bounded in jobs and bytes by
    the server), filtered and ordered by the federator (cli/job_list.py)."""
    with connect(target) as (jobs, _):
        return job_list.list_matching(lambda request: jobs.List(request, timeout=CALL_TIMEOUT),
                                      query or Query(queue=queue), page_size=page_size)


def get_job(target: Target, key: str) -> Job | None:
    """One job by id, or the newest of that name the caller may see (GetJobRequest.job_id); None if there is
    none. One Get: never a List of every job, which at a national backlog was dozens of pages and seconds."""
    with connect(target) as (jobs, _):
        try:
            reply = jobs.Get(jobs_pb2.GetJobRequest(job_id=key), timeout=CALL_TIMEOUT)
        except grpc.RpcError as err:
            if err.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise
    return convert.job_from_pb(reply)


def list_clusters(target: Target, *, full: bool = True, page_size: int = 0) -> list[dict[str, Any]]:
    """Every member cluster, fetched a page at a time. `full`: the scheduling detail too (CLUSTER_VIEW_FULL),
    its capacity a ClusterCapacity; else the BASIC view, its capacity a CapacitySummary (what tables show)."""
    view = jobs_pb2.CLUSTER_VIEW_FULL if full else jobs_pb2.CLUSTER_VIEW_BASIC
    out: list[dict[str, Any]] = []
    token = ""
    with connect(target) as (_, clusters):
        while True:
            resp = clusters.List(jobs_pb2.ListClustersRequest(page_size=page_size, page_token=token, view=view),
                                 timeout=CALL_TIMEOUT)
            for c in resp.clusters:
                cap: Any = None
                if c.HasField("capacity"):
                    cap = convert.capacity_from_pb(c.capacity) if full else summary_from_pb(c.capacity)
                out.append({"name": c.name, "region": c.region, "state": c.state, "labels": dict(c.labels),
                            "capacity": cap, "last_report_at": c.last_report_at, "placements": c.placements,
                            "gang_admission": c.gang_admission, "quarantined_until": c.quarantined_until,
                            "quarantine_reason": c.quarantine_reason, "cordoned": c.cordoned,
                            "cordoned_by": c.cordoned_by, "cordoned_at": c.cordoned_at,
                            "cordon_reason": c.cordon_reason, "member_unreachable": c.member_unreachable,
                            "member_unreachable_since": c.member_unreachable_since,
                            "report_age_seconds": c.report_age_seconds, "duplicate_agent": c.duplicate_agent,
                            "over_bound": c.over_bound, "draining": c.draining, "drain_jobs_left": c.drain_jobs_left,
                            "maintenance": c.maintenance, "maintenance_since": c.maintenance_since,
                            "reports_refused": c.reports_refused,
                            "reports_refused_since": c.reports_refused_since})
            token = resp.next_page_token
            if not token:
                return out


def _submit(args: argparse.Namespace) -> int:
    """Everything is checked before anything is sent (the files, names, request ids, sizes); then each job is
    sent in order and printed as it is accepted. The first refusal stops the submit: the error names the file
    and document, and says how many jobs before it were submitted and how many after it were not. Submitting
    the fixed file again is safe: the jobs already in return unchanged (same request id), never twice."""
    try:
        view = client_catalog(args.accelerator_catalog)  # the federator checks every job again with its own
    except CatalogError as exc:
        print(f"error: --accelerator-catalog: {exc}", file=sys.stderr)
        return 2
    held: list[bool] = []
    try:
        with client_view(view):
            sources = read_sources(args.filename, held=held)
        requests = submit_requests([spec for spec, _ in sources], run_again=args.run_again)
        for request, hold in zip(requests, held, strict=True):
            request.hold = args.hold or hold
    except (JobFileError, RequestIdError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if len(args.filename) > 1 or any(p.is_dir() for p in args.filename):
            print("error: nothing submitted: every file is checked before any job is sent", file=sys.stderr)
        return 2
    too_big = [f"{where}: {why}" for (_, where), r in zip(sources, requests, strict=True)
               if (why := oversized(r, args.max_request_bytes))]
    if too_big:
        for line in too_big[:20]:
            print(f"error: {line}", file=sys.stderr)
        more = f" ({len(too_big) - 20} more not shown)" if len(too_big) > 20 else ""
        print(f"error: nothing submitted: {len(too_big)} job(s) too big to send{more}", file=sys.stderr)
        return 2
    done = 0
    try:
        for reply in iter_submit(client_options(args), requests, patience=args.timeout):
            job = reply.job
            what = f"{job.spec.namespace}/{job.spec.name}, queue {job.spec.queue}"
            for warning in reply.warnings:  # the job is accepted; these are advice (SubmitResponse.warnings)
                print(f"warning: job {job.job_id} ({job.spec.namespace}/{job.spec.name}): {warning}",
                      file=sys.stderr)
            if reply.replayed:  # this file's request was answered before: the same job
                hint = "; --run-again runs it again" if job.phase.is_terminal else ""
                print(f"job {job.job_id} unchanged ({what}): submitted before, {job.phase}{hint}", flush=True)
            elif requests[done].hold and job.hold is None:  # a federator before 0.14.0 knows no hold: it would run
                print(f"error: {sources[done][1]}: job {job.job_id}: the federator did not hold it (one older than "
                      f"0.14.0 does not know holds), so it is not kept: {_take_back(args, job.job_id)}",
                      file=sys.stderr)
                _not_all(done, len(sources))
                return Exit.FAILED
            elif args.strict and reply.warnings:  # a warning is an error: the job is taken back, as if refused
                print(f"error: {sources[done][1]}: --strict: job {job.job_id} drew {len(reply.warnings)} "
                      f"warning(s) (above), so it is not kept: {_take_back(args, job.job_id)}", file=sys.stderr)
                _not_all(done, len(sources))
                return Exit.FAILED
            else:
                print(f"job {job.job_id} submitted{' held' if job.hold else ''} ({what})", flush=True)
            done += 1
    except (grpc.RpcError, TlsError) as err:
        if isinstance(err, TlsError):
            return _fail(err, args)
        where = sources[done][1] if done < len(sources) else ""
        if isinstance(err, NoAnswer):
            hint = _hint(err.last, args)
            print(f"error: {where}: {err}" + (f"; hint: {hint}" if hint else ""), file=sys.stderr)
            code: int = Exit.FAILED if hint else Exit.UNAVAILABLE
        else:  # a refusal of what the CLI derived is said of what the file wrote (cli/written_form.py)
            written = written_resources(args.filename)
            resource = written[done] if done < len(written) else ""
            code = _fail(err, args, prefix=f"{where}: ", said=lambda detail: as_written(
                detail, resource, own_catalog=args.accelerator_catalog is not None))
        _not_all(done, len(sources))
        return code
    return 0


def _not_all(done: int, total: int) -> None:
    """Say how far a submit stopped at job `done` (0-based) got."""
    if total > 1:
        print(f"error: {done} of {total} jobs submitted (those before it); {total - done - 1} after it not "
              "submitted. Submitting the files again after a fix is safe: jobs already submitted are returned "
              "unchanged, not run twice", file=sys.stderr)


def _take_back(args: argparse.Namespace, job_id: str) -> str:
    """Cancel a job `submit --strict` does not keep; what became of it, in words."""
    try:
        with connect(client_options(args)) as (jobs, _):
            jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job_id), timeout=CALL_TIMEOUT)
    except grpc.RpcError as err:
        return f"its cancel failed ({err.details() if hasattr(err, 'details') else err}): federator cancel {job_id}"
    return "cancelled (fix the file and submit it again)"


def _get(args: argparse.Namespace) -> int:
    if (args.what == "clusters" or args.name) and job_list.filtered(args):
        print("error: --phase, --owner, --namespace, --name-prefix, --since and --sort go with `get jobs` "
              "without a job name", file=sys.stderr)
        return 2
    try:
        if args.what == "clusters":
            # documents carry the histograms (nodes_by_free); a table needs only the BASIC view
            clusters = list_clusters(client_options(args), full=args.output in ("json", "yaml"),
                                     page_size=args.page_size)
            if args.name:  # one cluster, as `get jobs NAME` is one job
                clusters = [c for c in clusters if c["name"] == args.name]
                if not clusters:
                    print(f"error: no cluster {args.name!r}", file=sys.stderr)
                    return Exit.NOT_FOUND
            if args.output in ("json", "yaml"):
                docs = [{**c, "capacity": _cap_doc(c["capacity"])} for c in clusters]
                print(dump(docs, args.output))
            else:
                print(table(*cluster_rows(clusters, wide=args.output == "wide")))
            return 0
        if args.name:
            job = get_job(client_options(args), args.name)
            if job is None or (args.queue and job.spec.queue != args.queue):
                print(f"error: no job {args.name!r}" + (f" in queue {args.queue!r}" if args.queue else ""),
                      file=sys.stderr)
                return Exit.NOT_FOUND
            jobs = [job]
        else:
            jobs = list_jobs(client_options(args), page_size=args.page_size, query=job_list.query_of_args(args))
    except (grpc.RpcError, TlsError) as err:
        return _fail(err, args)
    if args.output in ("json", "yaml"):
        # FederatedJob documents (cli/job_document.py): one job's may be edited and submitted again as it is;
        # several are a YAML stream (`submit -f` takes it too) or a JSON list
        docs = [job_document(j) for j in jobs]
        print(dump(docs[0] if args.name else docs, args.output, stream=not args.name))
    else:
        print(table(*job_rows(jobs, wide=args.output == "wide")))
    return 0


def _cap_doc(cap: Any) -> Any:
    if cap is None:
        return None
    return {
        "accelerator_pools": [
            {
                "vendor": p.vendor,
                "accelerator_model": p.accelerator_model,
                "nodes_by_free": list(p.nodes_by_free),
                "total_accelerators": p.total_accelerators,
                "free_accelerators": p.free_accelerators,
                "quota_held_accelerators": p.quota_held_accelerators,
                # The counts above are the pool's own units: a MIG pool's partitions, each worth unit_milli.
                "sharing": p.sharing,
                "unit_milli": p.unit_milli,
            }
            for p in cap.accelerator_pools
        ],
        "cpu_milli_free": cap.cpu_milli_free,
        "cpu_milli_allocatable": cap.cpu_milli_allocatable,
        "memory_bytes_free": cap.memory_bytes_free,
        "memory_bytes_allocatable": cap.memory_bytes_allocatable,
        "workload_kinds": sorted(cap.workload_kinds),
        # devices its agent sees but does not offer, and why (agent.proto LeftOutDevices)
        "left_out": [{"resource_name": r, "reason": why, "devices": n} for r, why, n in cap.left_out],
    }


def _cancel(args: argparse.Namespace) -> int:
    problem = bulk_cancel.usage_problem(args)
    if problem:
        print(f"federator cancel: {problem}", file=sys.stderr)
        return 2
    try:
        with connect(client_options(args)) as (jobs, _):
            if args.queue or args.all_queues:  # every matching job over this one channel (cli/bulk_cancel.py)
                return bulk_cancel.run(jobs, args, timeout=CALL_TIMEOUT)
            job = convert.job_from_pb(jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=args.job), timeout=CALL_TIMEOUT))
    except (grpc.RpcError, TlsError) as err:
        return _fail(err, args)
    print(f"job {job.job_id} {job.phase}")
    return 0


def _scale(args: argparse.Namespace) -> int:
    try:
        with connect(client_options(args)) as (jobs, _):
            request = jobs_pb2.ScaleJobRequest(job_id=args.job, replicas=args.replicas)
            job = convert.job_from_pb(jobs.Scale(request, timeout=CALL_TIMEOUT))
    except (grpc.RpcError, TlsError) as err:
        return _fail(err, args)
    waiting = f", {job.replicas_waiting} waiting" if job.replicas_waiting else ""
    count = f"{job.spec.replicas} replica{'' if job.spec.replicas == 1 else 's'}"
    said = job.message.split("; ")[0] if job.message.startswith("scaled from ") else ""  # what shrank or stopped
    print(f"job {job.job_id} {job.phase}, {count}{waiting}" + (f": {said}" if said else ""))
    return 0


def watch_lines(jobs: Iterable[Job], last: dict[str, str] | None = None) -> Iterator[str]:
    """`federator watch`'s lines: a job's id, phase and clusters, and why it waits (its pending reason) or
    else what it says (its message: what a Placed job waits for on its member, why it failed).

    The federator announces every change to a job, many of them in fields no line shows (a placement's
    own phase, a timestamp), so a line that would repeat the job's last one is not printed: each line
    says something new. `last` (each job's last line) carries that across a reconnect, whose first answers
    are every job again."""
    last = {} if last is None else last
    for job in jobs:
        where = ",".join(dict.fromkeys(p.cluster for p in job.placements)) or "-"  # a scale-up: two on one
        why = str(job.pending_reason) if job.pending_reason and not job.replicas_waiting else job.message
        line = cell(f"{job.job_id} {job.phase} {where} {why}".rstrip())  # a member's words, shown not obeyed
        if last.get(job.job_id) != line:
            last[job.job_id] = line
            yield line


def _watch(args: argparse.Namespace) -> int:
    """Print job changes until interrupted. A federator that goes away after the watch began (a restart; the
    stream breaks with UNAVAILABLE) is waited for, with backoff, for --reconnect-for seconds: the watch says it
    lost the federator and when it is back, then goes on printing only what changed meanwhile. A federator that
    cannot be reached when the watch starts is an error at once, as for any other command."""
    try:
        opts = client_options(args)
    except TlsError as err:
        return _fail(err, args)
    last: dict[str, str] = {}
    lost_at = 0.0  # when the federator went away (0: it has not)
    delay = 0.5
    while True:
        try:
            with opts.channel() as channel:
                ready = grpc.channel_ready_future(channel)
                if lost_at:
                    ready.result(timeout=max(0.1, min(5.0, lost_at + args.reconnect_for - time.monotonic())))
                    print(f"watch: the federator at {opts.server} is back after {time.monotonic() - lost_at:.0f} s; "
                          "watching again (jobs that changed meanwhile follow)", file=sys.stderr, flush=True)
                    lost_at, delay = 0.0, 0.5
                stub = jobs_pb2_grpc.JobServiceStub(channel)
                stream = (convert.job_from_pb(pb) for pb in stub.Watch(jobs_pb2.WatchJobsRequest(job_id=args.job)))
                try:
                    for line in watch_lines(stream, last):
                        print(line, flush=True)
                except grpc.RpcError as err:
                    connected = ready.done() and not ready.cancelled() and ready.exception() is None
                    if not (connected and _watch_can_resume(err)):
                        raise
                    lost_at = time.monotonic()
                    print(f"watch: lost the federator at {opts.server} ({err.details()}); reconnecting for up to "  # type: ignore[attr-defined]
                          f"{args.reconnect_for:.0f} s", file=sys.stderr, flush=True)
                    continue
                return 0
        except grpc.FutureTimeoutError:
            pass  # not back yet
        except KeyboardInterrupt:
            return 0
        except (grpc.RpcError, TlsError) as err:
            return _fail(err, args)
        if time.monotonic() - lost_at >= args.reconnect_for:
            print(f"error: the federator at {opts.server} went away and did not come back in "
                  f"{args.reconnect_for:.0f} s", file=sys.stderr)
            return Exit.UNAVAILABLE
        try:
            time.sleep(delay)
        except KeyboardInterrupt:
            return 0
        delay = min(delay * 2, 5.0)


def _watch_can_resume(err: grpc.RpcError) -> bool:
    """A broken stream a new Watch may resume: the federator went away (UNAVAILABLE), or dropped this watch
    for falling behind (RESOURCE_EXHAUSTED; a new Watch starts from every job's state)."""
    code = err.code() if hasattr(err, "code") else None
    return code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
