"""The seam between the agent and the cluster it fronts.

The agent speaks the protocol; a backend runs placements. Backends: the
simulated cluster (`federator.backends.sim.runtime`) and Kubernetes
(`federator.backends.kube`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from federator.model import ClusterCapacity, JobPhase, JobSpec, Placement


class Invalid(str):
    """A launch refusal (what `Backend.launch` returns) in the words of a member API that refused the workload
    object itself as invalid (Kubernetes: 422 Invalid on its create): the agent answers `Ack invalid=true`
    (agent.proto), and the federator takes it as the job's fault once another provider's cluster agrees
    (server/invalid_specs.py). A `str`, so every caller that reads a refusal as its words reads this one too;
    a backend returns it only for that case, never for the cluster's own causes (RBAC, quota, a missing
    namespace, an unready API)."""

    __slots__ = ()


class UpdateCallback(Protocol):
    """Called by a backend when a placement changes phase, or has more to say: (placement_id, phase, message);
    `admission_overdue` when the member's own queue has held a Placed placement past the agent's admission
    timeout (the federator moves it if another cluster can run it: JobUpdate.admission_overdue); `running` and
    `ready` when the backend counts a serving placement's replicas (JobUpdate.replicas_running/replicas_ready:
    what the federator counts and alerts on), None where it does not; `nodes` (node name, replicas there) where
    the backend knows which nodes the replicas run on (JobUpdate.nodes: preemption frees one node's worth), ()
    where it does not; with a final phase, `ended_at`: when the workload ended, unix seconds on the member's wall
    clock (the simulated run's scheduled end; on Kubernetes a pod's finishedAt, a Job's completionTime), None when
    the backend does not know (a stop of its own, said as it happens). The agent dates the end by it, not by when
    its callback ran (agent/ended.py): a paused agent, or a member API slow to tell it, sees an end late."""

    def __call__(self, placement_id: str, phase: JobPhase, message: str, *, admission_overdue: bool = False,
                 running: int | None = None, ready: int | None = None,
                 nodes: tuple[tuple[str, int], ...] = (), ended_at: float | None = None) -> None: ...


def no_update(placement_id: str, phase: JobPhase, message: str, *, admission_overdue: bool = False,
              running: int | None = None, ready: int | None = None, nodes: tuple[tuple[str, int], ...] = (),
              ended_at: float | None = None) -> None:
    """The callback of a backend not started yet: nothing listens."""


class Backend(Protocol):
    async def start(self, on_update: UpdateCallback) -> None:
        """Begin watching the cluster; report phase changes through on_update."""

    async def stop(self) -> None: ...

    def capacity(self) -> ClusterCapacity:
        """The current resource model, with the placements it already accounts for."""

    async def launch(self, placement: Placement, spec: JobSpec) -> str | None:
        """Start a placement. Idempotent per placement id. Returns None, or why it was refused (an `Invalid`
        when the member's API refused the object itself as invalid)."""

    async def cancel(self, placement_id: str) -> None:
        """Stop a placement; a no-op if it is unknown or finished."""

    def placements(self) -> dict[str, JobPhase]:
        """Every placement this cluster runs or has finished, with its phase (for resync)."""


@runtime_checkable
class CountsStops(Protocol):
    """A backend that stops placements for reasons of its own (Kubernetes: a gang timeout, a disruption, a node
    lost): the agent hands it the count of federator_agent_placements_stopped_total{reason}."""

    def count_stops(self, on_stopped: Callable[[str], None]) -> None: ...


@runtime_checkable
class ClaimsNamespace(Protocol):
    """A backend that claims where it runs for its federation, so that another federation's agent there does not run
    beside it (Kubernetes: its `--namespace`, backends/kube/namespace_claim.py). Its `start` waits while another
    federation holds it; the agent hands it what to tell the SRE of the claim (its state, one of "held", "refused",
    "unchecked", and the problem, "" when held: federator_agent_namespace_claim, /readyz), and runs `keep_claim`
    beside its streams: it raises when the claim was taken over (the agent then ends), or returns when the backend
    keeps none."""

    def tell_claim(self, said: Callable[[str, str], None]) -> None: ...

    async def keep_claim(self) -> None: ...


@runtime_checkable
class SaysNodes(Protocol):
    """A backend that knows which nodes its placements' replicas run on and tells the agent with each update
    (`UpdateCallback` `nodes`). The agent keeps what was said and repeats it in every update, the re-sync's too
    (JobUpdate.nodes: the federator does not store it); an agent that restarted has said nothing yet, so its
    re-sync asks the backend (Kubernetes: its pods' nodes, read before the stream opens)."""

    def nodes_of(self, placement_id: str) -> tuple[tuple[str, int], ...]: ...


@runtime_checkable
class Resizer(Protocol):
    """A backend that shrinks a placement in place (agent.proto, Resize). The agent lists the "resize" feature in
    its Hello only for a backend that is one, so a backend that cannot shrink every placement the federator may
    resize (an inference job without spec.workload) must not implement it."""

    async def resize(self, placement_id: str, generation: int, replicas: int) -> str | None:
        """Run `replicas` of the placement from now on. Idempotent and never growing: None when done, and when there
        is nothing to do (an unknown or ended placement, another generation, a count not smaller than it runs);
        else why it cannot shrink this placement in place (it then runs as it was)."""


@dataclass(frozen=True, slots=True)
class ReplicaOutput:
    """One replica's output as a backend read it (agent.proto, ReplicaLog): `pod` "" where there is no pod."""

    replica: int
    pod: str
    container: str
    text: str
    truncated: bool = False
    error: str = ""


@runtime_checkable
class ReadsLogs(Protocol):
    """A backend that reads the tail of a placement's output (agent.proto, LogsRequest). The agent lists the
    "logs" feature for one, unless its operator said --no-logs."""

    async def logs(self, placement_id: str, replica: int, container: str, tail_lines: int,
                   limit_bytes: int) -> list[ReplicaOutput] | str:
        """The last `tail_lines` lines of each replica's output (`replica` -1: every one), `limit_bytes` bytes of
        text at most in all, each text's end kept; or why nothing could be read (a str: "not held here")."""


@runtime_checkable
class ReadsLogsSince(Protocol):
    """A backend that reads a placement's output with each line's time, from a time on (agent.proto,
    LogsRequest.timestamps and since_time): what `federator logs --follow` needs. The agent lists the "logs-since"
    feature for one (with "logs"); a backend that only reads tails is never asked."""

    async def logs_since(self, placement_id: str, replica: int, container: str, tail_lines: int, limit_bytes: int,
                         *, since: float | None) -> list[ReplicaOutput] | str:
        """As `ReadsLogs.logs`, each line begun with its RFC 3339 time and a space (Kubernetes' timestamps=true),
        and only the lines written at or after `since` (Unix seconds, whole; None: every line)."""
