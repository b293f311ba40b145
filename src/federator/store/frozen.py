"""A copy of a job that the store's writer thread reads while the event loop goes on changing the live job.

Why a module of its own: every write the group commit queues is copied when queued (store/group_commit.py: the
writer thread never reads a `Job` the loop is changing), and so is every change decided on a copy before it is
stored (server/cancelling.py, server/scaling.py, server/stored_first.py): one copy, field by field, for all of them.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TypeVar

from federator.model import Job, Placement

T = TypeVar("T")
_JOB_FIELDS = tuple(f.name for f in fields(Job))
_PLACEMENT_FIELDS = tuple(f.name for f in fields(Placement))


def freeze(job: Job) -> Job:
    """A copy of a job the loop may keep changing: its spec is frozen already, its placements are not.

    Field by field rather than `dataclasses.replace` (which re-runs __init__): after a cycle over a big
    backlog the loop freezes every job whose pending reason changed, and this is half the cost."""
    copy = _copy(job, Job, _JOB_FIELDS)
    copy.placements = [_copy(p, Placement, _PLACEMENT_FIELDS) for p in job.placements]
    return copy


def _copy(obj: T, cls: type[T], names: tuple[str, ...]) -> T:
    out = cls.__new__(cls)
    for name in names:
        setattr(out, name, getattr(obj, name))
    return out


__all__ = ["freeze"]
