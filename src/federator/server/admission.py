"""Who may take a job's name: the API's rule that a name stays taken while its job exists.

Kept apart from intake (`server/intake.py`), which only refuses
a name held by an *active* job (the Kubernetes controller relies on that: a
FederatedJob deleted and created again is a new job). For API clients a name
stays taken while its job exists, finished or not, as a Kubernetes object's
name does: a rerun of a job file whose job already ran must not run it again
by accident (a killed `federator submit` run twice). `SubmitRequest.run_again`
says "I mean it", and only for a job the caller may manage (its owner, a group
member with `jobs: manage`, an admin): run again over another tenant's finished
job, it took that tenant's name from them (their own run_again then met the
intruder's active job, which they could not cancel).

A caller who may not see the job holding a name hears `TAKEN`, the same words
whether that job is active or finished: which it is was theirs to guess.
"""

from __future__ import annotations

from collections.abc import Callable

from federator.jobfile import REQUEST_ID_ANNOTATION
from federator.model import Job, JobSpec
from federator.security.authz import submitter_of
from federator.server.federator import Federator
from federator.server.intake import AlreadyExists, taken


def name_taken(fed: Federator, spec: JobSpec, *, request_id: str, run_again: bool,
               may_manage: Callable[[Job], bool]) -> AlreadyExists | None:
    """None if Submit may go on (a replayed request id, a free name, or run_again over a finished job the
    caller may manage: `may_manage`), else the refusal to raise. A name held by an active job is left to
    `Intake.submit`, which refuses it whatever run_again says. `spec` carries its owner (`stamp_owner`): a
    request id is its owner's own."""
    rid = request_id or spec.annotation(REQUEST_ID_ANNOTATION)
    if rid and fed.intake.job_for_request(submitter_of(spec), rid) is not None:
        return None  # a retry: Submit answers it with the job it created
    # At most one job per name is active, and it is the name's latest: the latest one decides (an index,
    # not a scan over every job: with 100,000 jobs a scan per Submit was most of Submit's cost).
    last = fed.intake.latest_named(spec.namespace, spec.name)
    if last is None or not last.phase.is_terminal:
        return None
    if run_again and may_manage(last):
        return None
    if run_again:
        return AlreadyExists(f"metadata.name: job {spec.namespace}/{spec.name} already exists ({last.job_id}, "
                             f"{last.phase}) and is not yours to run again: run_again takes the name of a finished "
                             "job only from its owner, a group member who may manage it, or an admin; choose "
                             "another name", about=last, vague=taken(spec.namespace, spec.name))
    # In Kubernetes mode the finished job's FederatedJob still holds the name (names are unique there): said
    # here, or the run again this asks for is refused in turn for that object (found with a proto-only client).
    again = ("a finished job keeps its name: to run it again, submit with run_again (federator submit --run-again); "
             f"in Kubernetes mode, after deleting its FederatedJob (kubectl delete federatedjob -n {spec.namespace} "
             f"{spec.name})")
    return AlreadyExists(f"metadata.name: job {spec.namespace}/{spec.name} already exists ({last.job_id}, "
                         f"{last.phase}); {again}", about=last, vague=taken(spec.namespace, spec.name))


__all__ = ["name_taken"]
