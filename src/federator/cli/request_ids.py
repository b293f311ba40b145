"""The request id of each job a submit sends: what makes a submission safe to retry, within one invocation and
across them. A spec's request id is the one its file carries (`federator.io/request-id`) or else one derived from
its content (namespace, name and spec), so a transient failure retried with the same id, or the same file submitted
again after the CLI was killed, never makes a second job. A finished job keeps its name; `--run-again` asks for a
new run of the same file (a new id)."""

from __future__ import annotations

import hashlib
import json
import uuid

from federator.jobfile import REQUEST_ID_ANNOTATION, with_old_names
from federator.jobfile_writing import spec_to_document
from federator.model import JobSpec


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


__all__ = ["RequestIdError", "new_request_id", "request_id_for"]
