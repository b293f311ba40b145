"""A finished FederatedJob deleted `spec.ttlSecondsAfterFinished` after it finished, as batch/v1's TTL controller
deletes a Job.

Why: in Kubernetes mode a job lives as long as its FederatedJob (server/retention.py keeps none), so a CI pipeline
that makes one per run (`generateName: train-`) kept every run in etcd, each loaded by every federator start, and
had to write its own reaper (outside QA G13). The field is the object's, not the job's (`resources.job_document`
leaves it out of the spec the validator reads): it may be set or changed on any FederatedJob, running or ended, as
a Job's may, and the API server checks it (an integer, 0 or more).

No server default: as a Job without the field, a FederatedJob stays until someone deletes it. A GitOps tool
(Argo CD, Flux) re-creates an object of its repository that went away, which would run the job again; an object
kept in Git must not carry the field (docs/kubernetes.md, GitOps).

Finished means Succeeded, Failed or Cancelled (`status.finishedAt`), or refused by the federator (its `Finished`
condition's time: a refused object has no job to finish). The deletion is an ordinary one, with the object's uid as
precondition, so an object made again under that name in the meantime is not the one deleted: the finalizer path
(controller.py) cancels what is left of the job (nothing, for a finished one) and the object goes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError, KubeApi, KubeError, NotFoundError, Obj
from federator.backends.kube.resources import parse_timestamp

log = logging.getLogger("federator.kube")

FIELD = "ttlSecondsAfterFinished"
SWEEP_SECONDS = 5.0  # how often the FederatedJobs the controller watches are looked over: the delete's lateness


def finished_at(obj: Mapping[str, Any]) -> float:
    """When the FederatedJob's job ended (or the federator refused it); 0 while it has not."""
    status = obj.get("status") or {}
    for c in status.get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == "Finished" and c.get("status") == "True":
            return parse_timestamp(status.get("finishedAt")) or parse_timestamp(c.get("lastTransitionTime"))
    return 0.0


def due_at(obj: Mapping[str, Any]) -> float | None:
    """When the object is to be deleted: None if it has no TTL, has not finished, or is being deleted already."""
    ttl = (obj.get("spec") or {}).get(FIELD)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
        return None  # absent (or not what the CRD admits: left alone)
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return None
    ended = finished_at(obj)
    return ended + ttl if ended else None


def expired(objs: Iterable[Mapping[str, Any]], now: float) -> list[Mapping[str, Any]]:
    """The objects whose TTL has run out at `now`."""
    return [o for o in objs if (due := due_at(o)) is not None and due <= now]


def delete(api: KubeApi, obj: Mapping[str, Any]) -> bool:
    """Delete this very object (its uid the precondition); False if it is gone or was replaced already."""
    meta = obj.get("metadata") or {}
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
            "preconditions": {"uid": meta.get("uid")}}
    try:
        api.request("DELETE", FEDERATED_JOBS.path(meta.get("namespace"), meta.get("name")), body=body)
    except (NotFoundError, ConflictError):
        return False
    return True


async def delete_expired(objs: Callable[[], Iterable[Mapping[str, Any]]], api: KubeApi, clock: Callable[[], float], *,
                every: float = SWEEP_SECONDS) -> None:
    """Delete every FederatedJob of `objs()` (the controller's informer cache) whose TTL ran out, every `every`
    seconds, for ever. An API server away is tried again at the next sweep."""
    deleted: set[str] = set()  # uids deleted whose deletion the cache has not shown yet: not deleted (said) twice
    warned: set[str] = set()  # uids whose delete failed, said once (a Role without delete: every sweep otherwise)
    while True:
        now = list(objs())
        uids = {str((o.get("metadata") or {}).get("uid")) for o in now}
        deleted &= uids
        warned &= uids
        for obj in expired(now, clock()):
            meta: Obj = dict(obj.get("metadata") or {})
            if str(meta.get("uid")) in deleted:
                continue
            try:
                if await asyncio.to_thread(delete, api, obj):
                    deleted.add(str(meta.get("uid")))
                    log.info("FederatedJob %s/%s deleted: finished, and its spec.%s (%ss) has passed",
                             meta.get("namespace"), meta.get("name"), FIELD, (obj.get("spec") or {}).get(FIELD))
            except KubeError as exc:
                if str(meta.get("uid")) not in warned:
                    warned.add(str(meta.get("uid")))
                    log.warning("FederatedJob %s/%s past its spec.%s not deleted: %s; tried again every %gs (the "
                                "federator's Role needs delete on federatedjobs)", meta.get("namespace"),
                                meta.get("name"), FIELD, exc, every)
        await asyncio.sleep(every)


__all__ = ["FIELD", "delete", "delete_expired", "due_at", "expired", "finished_at"]
