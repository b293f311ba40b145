"""Orders from the federator to one agent, before they become wire messages."""

from __future__ import annotations

from dataclasses import dataclass

from federator.model import Job, JobSpec, Placement


@dataclass(frozen=True, slots=True)
class LaunchOrder:
    placement: Placement
    spec: JobSpec


@dataclass(frozen=True, slots=True)
class CancelOrder:
    placement_id: str
    reason: str
    # The cancel ends the job, not only the placement (a cancel, a deleted FederatedJob): Cancel.job_ended, which
    # the agent says back on the placement's Cancelled update (server/restored_ends.py).
    job_ended: bool = False


@dataclass(frozen=True, slots=True)
class ResizeOrder:
    """Shrink a placement in place to `replicas` (agent.proto, Resize): only to an agent that said it can."""

    placement_id: str
    generation: int
    replicas: int
    reason: str


@dataclass(frozen=True, slots=True)
class LogsOrder:
    """Ask for the tail of a placement's output (agent.proto, LogsRequest): only to an agent that said it serves
    logs; its answer is awaited by server/logs.py, not by the placement's turn of orders."""

    request_id: str
    placement_id: str
    replica: int  # -1: every replica
    container: str
    tail_lines: int
    limit_bytes: int
    timestamps: bool = False  # a follow's (server/log_follow.py): only to an agent listing "logs-since"
    since_time: str = ""  # RFC 3339, whole seconds; "" no bound


@dataclass(frozen=True, slots=True)
class ErrorNotice:
    """An agent message the federator refused: sent back on the stream as an Error (the stream goes on)."""

    reason: str
    message: str
    placement_id: str = ""


@dataclass(frozen=True, slots=True)
class ListWanted:
    """A PlacementDelta the federator could not apply: the agent's next report lists its placements in full
    (server/placement_lists.py)."""

    reason: str


Order = LaunchOrder | CancelOrder | ResizeOrder | LogsOrder | ErrorNotice | ListWanted


def stray_reason(job: Job | None, placement_id: str) -> str:
    """Why a cluster is told to stop a placement it reports but that is not current there: replaced (fencing),
    or ended, for a report sent as it succeeded (agents logged `superseded` for those, which read like a
    duplicate run that was fenced)."""
    ended = next((p.phase for p in job.placements if p.placement_id == placement_id), None) if job else None
    return f"placement has ended ({ended})" if ended and ended.is_terminal else "superseded: not a current placement"
