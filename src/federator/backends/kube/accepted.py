"""What an accepted FederatedJob's job does not follow of its object, said on the object. Pure functions.

Once the federator accepts a FederatedJob, its job is what was accepted: the
spec (immutable, by the CRD's CEL rule, but for an inference job's
spec.replicas), the labels and annotations, and each scale the federator took
since; status.accepted keeps them, and a restart rebuilds the job from there
(resources.py `as_accepted`). What the live object says after that and the job
does not follow is never written back over the user's spec (a GitOps tool
that applies it again would fight the federator for ever: outside QA G4), and
never fails the running job at a restart (G10). It is said instead:

- a scale the federator refuses (below minRegions, over --max-replicas, a job
  that has ended): a Warning Event ScaleRefused, and the condition Accepted
  False with reason ScaleRefused, until spec.replicas comes to a count it takes;
- an edit of a `federator.io/` annotation (the master port, a simulated
  outcome) or metadata the federator would refuse now (a port "abc", a 65th
  label): a Warning Event MetadataIgnored, and Accepted False with reason
  MetadataIgnored, until the object says what was accepted again. Other labels
  and annotations (a GitOps tool's tracking label, a CI's) are the user's: the
  job keeps those it was submitted with, and nothing is said.

The condition appears the first time something is ignored, and goes back to
True (reason Accepted) once the object and the job agree again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.backends.kube.resources import condition, job_document, timestamp
from federator.jobfile import JobFileError, parse_job
from federator.model import DEPENDS_ON_ANNOTATION, JobSpec
from federator.security.authz import DELEGATE_ANNOTATION, GROUPS_ANNOTATION, USER_ANNOTATION

ACCEPTED = "Accepted"  # the condition's type
SCALE_REFUSED = "ScaleRefused"  # its reasons when False, as the Warning Events that say the same
METADATA_IGNORED = "MetadataIgnored"
PREFIX = "federator.io/"
# The owner is the federator's record (status.owner), never what the object's annotations claim (security/authz.py)
# and the dependency is spec.dependsOn's stored form (model/dependency.py), resolved to job ids at submission: the
# object's spec says it, immutable (the CRD), never its metadata
_OWNER_KEYS = frozenset({USER_ANNOTATION, GROUPS_ANNOTATION, DELEGATE_ANNOTATION, DEPENDS_ON_ANNOTATION})


def ignored(status: dict[str, Any], notes: Mapping[str, str] | None, *, generation: int, now: float,
            old_conditions: list[Mapping[str, Any]] | None) -> None:
    """Add the condition Accepted to a job's status: False while `notes` (reason -> message) say what the job does
    not follow, True once it follows the object again; absent if nothing was ever ignored."""
    old = {str(c.get("type")): c for c in old_conditions or []}
    if not notes and ACCEPTED not in old:
        return
    reason, message = ((sorted(notes)[0], "; ".join(notes[r] for r in sorted(notes))) if notes else
                       (ACCEPTED, "the job follows this object's spec and metadata"))
    status["conditions"] = [*status.get("conditions", []),
                            condition(ACCEPTED, not notes, reason, message, timestamp(now), generation, old)]


def read_back(conditions: list[Mapping[str, Any]]) -> dict[str, str]:
    """What a status written before this start says the job does not follow (Accepted=False): kept until the
    controller has looked at the object again, so a status write before that does not turn it True meanwhile."""
    for c in conditions:
        if c.get("type") == ACCEPTED and c.get("status") == "False":
            return {str(c.get("reason", "")): str(c.get("message", ""))}
    return {}


def said(obj: Mapping[str, Any], reason: str, message: str) -> bool:
    """Whether the object's status says this already (a federator before this one did: not said again)."""
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ACCEPTED and c.get("status") == "False" and c.get("reason") == reason \
                and message in str(c.get("message", "")):
            return True
    return False


def metadata_ignored(obj: Mapping[str, Any], spec: JobSpec) -> str | None:
    """What of the live object's metadata the job, accepted as `spec`, does not follow, for its user; None when
    nothing the federator reads differs."""
    doc = job_document(obj)
    if _mine(doc["metadata"].get("labels") or {}) == _mine(dict(spec.labels)) \
            and _mine(doc["metadata"].get("annotations") or {}) == _mine(dict(spec.annotations)):
        return None  # as accepted (most events: status writes): nothing parsed
    theirs = _federators(doc["metadata"].get("annotations") or {})
    ours = _federators(dict(spec.annotations))
    changed = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    if "workload" not in doc["spec"]:
        doc["spec"]["replicas"] = spec.replicas  # a refused scale is said apart (ScaleRefused)
    meta = obj.get("metadata") or {}
    try:
        parse_job(doc, source=f"FederatedJob {meta.get('namespace')}/{meta.get('name')}")
        problem = ""
    except JobFileError as exc:
        problem = str(exc)
    if not changed and not problem:
        return None
    what = problem or "; ".join(f"metadata.annotations[{k}]: changed from {_shown(ours.get(k))} to "
                                f"{_shown(theirs.get(k))}" for k in changed)
    return (f"{what}: not applied; the job keeps the labels and annotations it was accepted with "
            "(status.accepted), which are read once, at submission: to change them, create a new FederatedJob")


def _mine(items: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in items.items() if k not in _OWNER_KEYS}


def _federators(annotations: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in annotations.items() if str(k).startswith(PREFIX) and k not in _OWNER_KEYS}


def _shown(value: str | None) -> str:
    return "(none)" if value is None else repr(value[:80])


__all__ = ["ACCEPTED", "METADATA_IGNORED", "SCALE_REFUSED", "ignored", "metadata_ignored", "read_back", "said"]
