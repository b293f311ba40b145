"""`federator submit`: send job files to a federator, each job printed as it is accepted.

Everything is checked before anything is sent (cli/job_files.py: the files and names; cli/request_ids.py: the
request ids; `oversized`: the sizes); then each job is sent in order (cli/submit_calls.py). The first refusal stops
the submit, and submitting the fixed file again is safe: the jobs already in return unchanged.

`--strict` (a warning is an error) asks the federator to check every job first (SubmitRequest.validate_only,
server/submit_check.py) and submits none unless all pass: no job is accepted and then cancelled, so no watcher,
auditor or member ever sees one. A federator before 0.15.0 (no WhoAmI feature "jobs.submit_validate_only")
cannot check without submitting: the command says so once and does what it did before, taking back (cancelling)
a job that drew a warning. With `--array` the check is of the array (its first task standing for all, since
0.16.0: feature "jobs.submit_validate_only_array"); against 0.15.0 the array is submitted and, at a warning, every
task of it cancelled.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import grpc

from federator.api.features import JOBS_SUBMIT_VALIDATE_ONLY, JOBS_SUBMIT_VALIDATE_ONLY_ARRAY
from federator.api.v1 import jobs_pb2
from federator.catalog import CatalogError, client_catalog, client_view
from federator.cli import calls
from federator.cli.arg_types import whole
from federator.cli.certs import client_options
from federator.cli.exit_codes import Exit
from federator.cli.job_files import read_sources, with_dependency
from federator.cli.no_leader import gap_note
from federator.cli.placement_asks import dropped_asks
from federator.cli.request_ids import RequestIdError
from federator.cli.submit_array import arrayed, cancel_array, summary
from federator.cli.submit_calls import NoAnswer, Submitted, iter_submit, submit_requests
from federator.cli.written_form import as_written, written_resources
from federator.jobfile import JobFileError
from federator.model import JobSpec, Preference
from federator.security.limits import MAX_MESSAGE_BYTES_CEILING, Limits
from federator.security.tls import TlsError

SUBMIT_PATIENCE = 15.0
"""Seconds one job's Submit may take, its retries included: a federator that does not answer (or is away) for
this long is reported as not answering, and nothing more is sent."""
MAX_REQUEST_BYTES = Limits().max_message_bytes
"""The largest Submit the CLI sends unless told (--max-request-bytes): the federator's default
--max-message-bytes (1 MiB). A job is a few KiB; one this big would be refused by a federator on its
defaults, and by Kubernetes' object size in its mode."""

request_bytes = whole("bytes", 1024, MAX_MESSAGE_BYTES_CEILING)


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


def run(args: argparse.Namespace) -> int:
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
            sources = with_dependency(read_sources(args.filename, held=held), args.after, args.after_any,
                                      args.after_not_ok, args.after_start)
        if args.prefer:  # --prefer: spec.prefer of every job (model/placement_asks.py)
            sources = [(replace(spec, prefer=Preference(args.prefer)), where) for spec, where in sources]
        requests = submit_requests([spec for spec, _ in sources], run_again=args.run_again)
        for request, hold in zip(requests, held, strict=True):
            request.hold = args.hold or hold
    except (JobFileError, RequestIdError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if len(args.filename) > 1 or any(p.is_dir() for p in args.filename):
            print("error: nothing submitted: every file is checked before any job is sent", file=sys.stderr)
        return 2
    if args.array is not None and (problem := arrayed(requests, args.array)):  # job arrays (cli/submit_array.py)
        print(f"error: {problem}", file=sys.stderr)
        return 2
    too_big = [f"{where}: {why}" for (_, where), r in zip(sources, requests, strict=True)
               if (why := oversized(r, args.max_request_bytes))]
    if too_big:
        for line in too_big[:20]:
            print(f"error: {line}", file=sys.stderr)
        more = f" ({len(too_big) - 20} more not shown)" if len(too_big) > 20 else ""
        print(f"error: nothing submitted: {len(too_big)} job(s) too big to send{more}", file=sys.stderr)
        return 2
    done, checking = 0, False
    try:
        if args.strict and _can_check(args, array=bool(args.array)):
            checking = True
            refused = _check_first(args, sources, requests)
            if refused is not None:
                return refused
            checking = False
        for reply in iter_submit(client_options(args), requests, patience=args.timeout):
            job = reply.job
            what = f"{job.spec.namespace}/{job.spec.name}, queue {job.spec.queue}"
            for warning in reply.warnings:  # the job is accepted; these are advice (SubmitResponse.warnings)
                print(f"warning: job {job.job_id} ({job.spec.namespace}/{job.spec.name}): {warning}",
                      file=sys.stderr)
            if args.array:  # an array's one Submit: its tasks, or a federator before 0.15.0 that made one job
                if not reply.array_id:
                    print(f"error: job {job.job_id}: the federator made one job, not an array (one older than 0.15.0 "
                          f"does not know --array), so it is not kept: {_take_back(args, job.job_id)}",
                          file=sys.stderr)
                    return Exit.FAILED
                if args.strict and reply.warnings and not reply.replayed:  # not checked first: a 0.15.0 federator
                    print(f"error: --strict: array {reply.array_id} drew {len(reply.warnings)} warning(s) (above), "
                          f"so it is not kept: {_take_back_array(args, reply.array_id)}", file=sys.stderr)
                    return Exit.FAILED
                print(summary(reply.array_id, reply.array_jobs, replayed=reply.replayed,
                              max_running=requests[0].array.max_running), flush=True)
            elif reply.replayed:  # this file's request was answered before: the same job
                hint = "; --run-again runs it again" if job.phase.is_terminal else ""
                print(f"job {job.job_id} unchanged ({what}): submitted before, {job.phase}{hint}", flush=True)
            elif requests[done].hold and job.hold is None:  # a federator before 0.14.0 knows no hold: it would run
                print(f"error: {sources[done][1]}: job {job.job_id}: the federator did not hold it (one older than "
                      f"0.14.0 does not know holds), so it is not kept: {_take_back(args, job.job_id)}",
                      file=sys.stderr)
                _not_all(done, len(sources))
                return Exit.FAILED
            elif requests[done].spec.HasField("depends_on") and (
                    not job.spec.depends_on or job.spec.depends_on.condition.value
                    != (requests[done].spec.depends_on.condition or "afterok")):  # before 0.14.0: no wait
                print(f"error: {sources[done][1]}: job {job.job_id}: the federator did not keep its dependency "
                      f"(one older than 0.14.0 does not know spec.dependsOn), so it is not kept: "
                      f"{_take_back(args, job.job_id)}", file=sys.stderr)
                _not_all(done, len(sources))
                return Exit.FAILED
            elif list(requests[done].spec.clusters.same_as) and not job.spec.clusters.same_as:  # before 0.19.0
                print(f"error: {sources[done][1]}: job {job.job_id}: the federator did not keep its "
                      f"spec.clusters.sameAs (one older than 0.19.0 does not know it, and would place the job on any "
                      f"cluster), so it is not kept: {_take_back(args, job.job_id)}", file=sys.stderr)
                _not_all(done, len(sources))
                return Exit.FAILED
            elif requests[done].spec.HasField("clusters") and not job.spec.clusters.bounds:  # before 0.17.0
                print(f"error: {sources[done][1]}: job {job.job_id}: the federator did not keep its spec.clusters "
                      f"(one older than 0.17.0 does not know it, and would place the job on any cluster), so it is "
                      f"not kept: {_take_back(args, job.job_id)}", file=sys.stderr)
                _not_all(done, len(sources))
                return Exit.FAILED
            elif requests[done].spec.failure_policy.max_restarts and not job.spec.failure_policy.set:  # < 0.18.0
                print(f"error: {sources[done][1]}: job {job.job_id}: the federator did not keep its "
                      f"spec.failurePolicy (one older than 0.18.0 does not know it, and would end the job at its "
                      f"first failure), so it is not kept: {_take_back(args, job.job_id)}", file=sys.stderr)
                _not_all(done, len(sources))
                return Exit.FAILED
            elif lost := dropped_asks(requests[done].spec, job.spec):  # < 0.19.0: region weights, prefer
                print(f"error: {sources[done][1]}: job {job.job_id}: the federator did not keep its {lost} (one older "
                      f"than 0.19.0 does not know it, and would place the job by its policy alone), so it is not "
                      f"kept: {_take_back(args, job.job_id)}", file=sys.stderr)
                _not_all(done, len(sources))
                return Exit.FAILED
            elif requests[done].spec.min_replicas and not job.spec.min_replicas:  # < 0.21.0 (model/elastic.py)
                print(f"error: {sources[done][1]}: job {job.job_id}: the federator did not keep its spec.minReplicas "
                      f"(one older than 0.21.0 does not know it, and would wait for the whole gang), so it is not "
                      f"kept: {_take_back(args, job.job_id)}", file=sys.stderr)
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
            return calls.fail(err, args)
        done = getattr(err, "at", done) if checking else done
        where = sources[done][1] if done < len(sources) else ""
        if isinstance(err, NoAnswer):
            hint = calls.setup_hint(err.last, args)
            print(f"error: {where}: {err}" + (f"; hint: {hint}" if hint else ""), file=sys.stderr)
            note = "" if hint else gap_note(str(err), args.server, unanswered=str(err).startswith("no answer"))
            if note:
                print(note, file=sys.stderr)
            code: int = Exit.FAILED if hint else Exit.UNAVAILABLE
        else:  # a refusal of what the CLI derived is said of what the file wrote (cli/written_form.py)
            written = written_resources(args.filename)
            resource = written[done] if done < len(written) else ""
            code = calls.fail(err, args, prefix=f"{where}: ", said=lambda detail: as_written(
                detail, resource, own_catalog=args.accelerator_catalog is not None))
        if checking:
            print("error: nothing submitted: --strict checks every job before any is sent", file=sys.stderr)
        else:
            _not_all(done, len(sources))
        return code
    return 0


def _can_check(args: argparse.Namespace, *, array: bool) -> bool:
    """Whether the federator checks a Submit without making the job (WhoAmI feature "jobs.submit_validate_only";
    for an array, "jobs.submit_validate_only_array", 0.16.0); when it does not, `--strict` says once that it falls
    back to submitting and taking back."""
    feature = JOBS_SUBMIT_VALIDATE_ONLY_ARRAY if array else JOBS_SUBMIT_VALIDATE_ONLY
    with client_options(args).channel() as channel:
        if feature in calls.features(channel):
            return True
    if array:
        print(f"warning: --strict: this federator cannot check an array without submitting it (older than 0.16.0: "
              f"its WhoAmI lists no {feature}); an array that draws a warning is submitted, then every task of it "
              "cancelled", file=sys.stderr)
    else:
        print(f"warning: --strict: this federator cannot check a job without submitting it (older than 0.15.0: its "
              f"WhoAmI lists no {feature}); a job that draws a warning is submitted, then cancelled", file=sys.stderr)
    return False


def _check_first(args: argparse.Namespace, sources: list[tuple[JobSpec, str]],
                 requests: list[jobs_pb2.SubmitRequest]) -> int | None:
    """Every job checked by the federator (SubmitRequest.validate_only), nothing made: None when none drew a
    warning, else the exit status, nothing submitted. A refusal is raised (an RpcError), as a Submit's."""
    checks = []
    for request in requests:
        check = jobs_pb2.SubmitRequest()
        check.CopyFrom(request)
        check.validate_only = True
        checks.append(check)
    warned: list[str] = []
    replies = iter_submit(client_options(args), checks, patience=args.timeout)
    at = 0
    try:
        for at, reply in enumerate(replies):
            _judged(args, sources[at][1], reply, warned)
    except grpc.RpcError as err:
        err.at = at  # type: ignore[attr-defined]  # which job's check was refused: the error names its file
        raise
    if warned and requests[0].HasField("array"):  # one task was checked for all: they differ only by index
        print("error: --strict: the array drew warnings (above: its first task's, which stand for every task's); "
              "no task submitted", file=sys.stderr)
        return Exit.FAILED
    if warned:
        print(f"error: --strict: {len(warned)} of {len(requests)} job(s) drew warnings (above): "
              f"{', '.join(warned[:5])}{' ...' if len(warned) > 5 else ''}; nothing submitted", file=sys.stderr)
        return Exit.FAILED
    return None


def _judged(args: argparse.Namespace, where: str, reply: Submitted, warned: list[str]) -> None:
    """One job's check: its warnings said, and `where` added to `warned` if it drew any."""
    job = reply.job
    if job.job_id and not reply.replayed:  # not checked but made: a federator that ignored validate_only
        print(f"error: {where}: --strict: the federator made job {job.job_id} instead of checking it, so it is "
              f"not kept: {_take_back(args, job.job_id)}", file=sys.stderr)
        warned.append(where)
        return
    for warning in reply.warnings:
        print(f"warning: {where}: {warning}", file=sys.stderr)
    if reply.warnings and not reply.replayed:  # a replayed job was accepted before: a Submit makes nothing
        warned.append(where)


def _take_back_array(args: argparse.Namespace, array_id: str) -> str:
    """Cancel every task of an array `submit --strict` does not keep; what became of them, in words."""
    try:
        with calls.connect(client_options(args)) as (jobs, _):
            _, cancelled, _ = cancel_array(jobs, array_id, timeout=calls.CALL_TIMEOUT)
    except grpc.RpcError as err:
        return (f"its cancel failed ({err.details() if hasattr(err, 'details') else err}): "
                f"federator cancel {array_id}")
    return f"{cancelled} task(s) cancelled (fix the file and submit it again)"


def _not_all(done: int, total: int) -> None:
    """Say how far a submit stopped at job `done` (0-based) got."""
    if total > 1:
        print(f"error: {done} of {total} jobs submitted (those before it); {total - done - 1} after it not "
              "submitted. Submitting the files again after a fix is safe: jobs already submitted are returned "
              "unchanged, not run twice", file=sys.stderr)


def _take_back(args: argparse.Namespace, job_id: str) -> str:
    """Cancel a job `submit --strict` does not keep; what became of it, in words."""
    try:
        with calls.connect(client_options(args)) as (jobs, _):
            jobs.Cancel(jobs_pb2.CancelJobRequest(job_id=job_id), timeout=calls.CALL_TIMEOUT)
    except grpc.RpcError as err:
        return f"its cancel failed ({err.details() if hasattr(err, 'details') else err}): federator cancel {job_id}"
    return "cancelled (fix the file and submit it again)"


__all__ = ["MAX_REQUEST_BYTES", "SUBMIT_PATIENCE", "oversized", "request_bytes", "run"]
