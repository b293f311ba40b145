"""What a job waits on before it may be placed (JobSpec.depends_on; proto types.proto JobDependency).

Why an annotation: a dependency is part of the spec, never changed once submitted, and must survive a restart as
the spec does. The spec's annotations are stored with it (store/codec.py) and carried by a FederatedJob, so the
dependency is kept as one, `federator.io/depends-on: "afterok:prep-3f9a1c,tok-77aa01"`, and read back through
`JobSpec.depends_on`; the wire (JobSpec.depends_on), the job file and the CRD (spec.dependsOn) each give it as a
field of its own. Before Submit resolves them the keys may be names; after, they are job ids, or array ids (an
array named as a whole: every task of it, server/dependencies.py), so one key may stand for up to 1000 tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEPENDS_ON_ANNOTATION = "federator.io/depends-on"
MAX_DEPENDENCIES = 16  # keys one job may name: a pipeline's fan-in, not a way to make one job watch thousands


class Condition(StrEnum):
    """When the jobs a job waits on let it go (Slurm's --dependency types of the same names)."""

    AFTER_OK = "afterok"  # each named job Succeeded; one Failed or Cancelled fails the dependent at once
    AFTER_ANY = "afterany"  # each named job ended, however
    AFTER_NOT_OK = "afternotok"  # each named job ended Failed or Cancelled; one Succeeded fails the dependent at once
    # each named job has started running (its first Running report; Slurm's `after:`): roles of one pipeline split
    # into jobs (an RL learner and its rollout workers) start together. One that ended before it ever started
    # (Cancelled, Failed) fails the dependent at once: it can never start.
    AFTER_START = "afterstart"


CONDITIONS = ", ".join(c.value for c in Condition)  # what an error message lists


@dataclass(frozen=True, slots=True)
class JobDependency:
    """The jobs (ids or array ids, or keys before Submit resolves them) a job waits on, and on what."""

    condition: Condition
    jobs: tuple[str, ...]

    def annotation(self) -> str:
        """The stored form: "afterok:a,b"."""
        return f"{self.condition.value}:{','.join(self.jobs)}"


def parse_dependency(value: str) -> JobDependency | str:
    """The dependency an annotation value keeps, or what is wrong with it (the caller names the field)."""
    condition, colon, keys = value.partition(":")
    if not colon:
        condition, keys = Condition.AFTER_OK.value, value
    try:
        cond = Condition(condition.strip() or Condition.AFTER_OK.value)
    except ValueError:
        return f"condition must be {CONDITIONS}, got {condition[:40]!r}"
    jobs = tuple(k.strip() for k in keys.split(",")) if keys.strip() else ()
    return checked(cond, jobs)


def checked(condition: Condition, jobs: tuple[str, ...]) -> JobDependency | str:
    """The dependency, or what is wrong with its jobs: none, more than MAX_DEPENDENCIES, an empty or repeated key,
    or a key with a comma (the stored form's separator)."""
    if not jobs:
        return "jobs: names no job; give 1 to 16 job ids or names"
    if len(jobs) > MAX_DEPENDENCIES:
        return f"jobs: names {len(jobs)} jobs; at most {MAX_DEPENDENCIES}"
    for key in jobs:
        if not key or "," in key or len(key) > 512:
            return f"jobs: {key[:80]!r} is not a job id, namespace/name or name"
    repeated = sorted({k for k in jobs if jobs.count(k) > 1})
    if repeated:
        return f"jobs: {repeated[0]!r} is named twice"
    return JobDependency(condition, jobs)


__all__ = ["CONDITIONS", "DEPENDS_ON_ANNOTATION", "MAX_DEPENDENCIES", "Condition", "JobDependency", "checked",
           "parse_dependency"]
