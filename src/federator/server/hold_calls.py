"""`JobService.Hold` and `JobService.Release` at the gRPC edge: decided and audited as a Cancel is.

Why a module of its own: the job service's calls are each a translation of wire to domain and of refusals to
status codes; hold and release (server/job_holds.py) add two such calls and one rule of their own (an admin's hold
only an admin releases), which live here rather than grow job_service.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from federator.api import convert
from federator.api.v1 import jobs_pb2, types_pb2
from federator.model import Job
from federator.security.authz import Principal, Rule, owner_of
from federator.server.errors import cut
from federator.server.job_holds import Actor, HoldProblem, HoldRefused, hold_async, release_async
from federator.store.errors import StoreUnavailable

if TYPE_CHECKING:
    from federator.server.job_service import JobService


def actor_of(who: Principal, job: Job) -> Actor:
    """Who acts: an admin acting on a job that is not their own holds it as an admin (only an admin releases it)."""
    return Actor(user=who.user, admin=who.admin and owner_of(job.spec)[0] != who.user)


def _audited(job: Job) -> dict[str, str]:
    return {"kind": "Job", "namespace": job.spec.namespace, "name": job.spec.name, "queue": job.spec.queue,
            "job_id": job.job_id}


async def hold_call(service: JobService, request: jobs_pb2.HoldJobRequest,
                    context: grpc.aio.ServicerContext) -> types_pb2.Job:
    """Hold a Pending job: FAILED_PRECONDITION naming its phase for any other; idempotent."""
    return await _act(service, "hold", request.job_id, context)


async def release_call(service: JobService, request: jobs_pb2.ReleaseJobRequest,
                       context: grpc.aio.ServicerContext) -> types_pb2.Job:
    """Release a held job: PERMISSION_DENIED (rule admin) for an admin's hold released by one who is not; idempotent."""
    return await _act(service, "release", request.job_id, context)


async def _act(service: JobService, action: str, job_id: str, context: grpc.aio.ServicerContext) -> types_pb2.Job:
    who = await service.principal(context)
    job, rule = await service._to_manage(who, job_id, action, context)
    actor = actor_of(who, job)
    try:
        if action == "hold":
            job = await hold_async(service.fed, job, actor)
        else:
            job = await release_async(service.fed, job, actor)
    except HoldRefused as exc:
        if exc.problem is HoldProblem.ADMIN_HOLD:
            service.audit.record(action, identity=who, obj=_audited(job), result="refused",
                                 code=grpc.StatusCode.PERMISSION_DENIED.name, rule=Rule.ADMIN.value, message=str(exc))
            await service.refuse(context, Rule.ADMIN.value, str(exc), job_id=job.job_id, action=action)
        service.audit.record(action, identity=who, obj=_audited(job), result="failed",
                             code=grpc.StatusCode.FAILED_PRECONDITION.name, message=str(exc))
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, cut(str(exc)))
        raise AssertionError("unreachable") from exc
    except StoreUnavailable as exc:  # nothing changed: a hold not stored is undone, a release not stored not taken
        message = f"{exc}; the job was not {'held' if action == 'hold' else 'released'}"
        service.audit.record(action, identity=who, obj=_audited(job), result="failed",
                             code=grpc.StatusCode.UNAVAILABLE.name, message=message)
        await context.abort(grpc.StatusCode.UNAVAILABLE, message)
        raise AssertionError("unreachable") from exc
    service.audit.record(action, identity=who, obj=_audited(job), result="accepted", rule=rule)
    return convert.job_to_pb(job)


__all__ = ["actor_of", "hold_call", "release_call"]
