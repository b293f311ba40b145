"""What a job key in Get and Cancel names: a job id, `namespace/name`, or a name.

A name is the user's, and unique only within a namespace: two tenants may both run `dup`. Get and Cancel took
the newest job of that name the caller may see, so an admin who ran `federator cancel dup` meaning team-b's job
cancelled team-a's (outside QA). Now a bare name that names jobs in more than one namespace the caller may see
is refused, listing them (only those the caller may see), and `namespace/name` picks one. Within a namespace the
newest job of a name is the one meant (a run again replaces the one before).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from federator.jobfile import shown
from federator.model import Job, JobId
from federator.server.job_table import JobTable


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """A bare name with jobs in several namespaces the caller may see: the newest of each."""

    key: str
    candidates: tuple[Job, ...]

    @property
    def message(self) -> str:
        listed = ", ".join(f"{j.spec.namespace}/{j.spec.name} ({j.job_id}, {j.phase.value})" for j in self.candidates)
        return (f"job name {shown(self.key)} is in {len(self.candidates)} namespaces you may see: {listed}; give "
                "the job id or namespace/name")


def _newest(jobs: Iterable[Job]) -> Job:
    return max(jobs, key=lambda j: j.submitted_at)


def _named(jobs: Mapping[JobId, Job], name: str) -> list[Job]:
    """The jobs of a name: by the table's name index (server/job_table.py), or a scan of a plain mapping."""
    if isinstance(jobs, JobTable):
        return jobs.named(name)
    return [j for j in jobs.values() if j.spec.name == name]


def resolve(jobs: Mapping[JobId, Job], key: str,
            visible: Callable[[list[Job]], list[Job]]) -> Job | Ambiguous | None:
    """The job `key` names; Ambiguous; or None. Of the jobs a name matches, the caller's visible ones decide; when
    none is visible the newest is returned all the same, for the caller's authorisation to decide (the job API
    answers a job its caller may not see as no job, and audits the refusal)."""
    job = jobs.get(JobId(key))
    if job is not None:
        return job
    namespace, slash, name = key.rpartition("/")
    if slash:
        named = [j for j in _named(jobs, name) if j.spec.namespace == namespace]
    else:
        named = _named(jobs, key)
    if not named:
        return None
    seen = visible(named)
    if not seen:
        return _newest(named)
    by_namespace: dict[str, list[Job]] = {}
    for j in seen:
        by_namespace.setdefault(j.spec.namespace, []).append(j)
    if len(by_namespace) > 1:
        return Ambiguous(key, tuple(_newest(group) for _, group in sorted(by_namespace.items())))
    return _newest(seen)


__all__ = ["Ambiguous", "resolve"]
