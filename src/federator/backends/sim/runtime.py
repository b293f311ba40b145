"""The simulated cluster as an agent backend: placements run for a set time.

A job's simulated run time comes from its annotations, so the same job file
works on a real cluster (where the pod template decides):
`federator.io/sim-duration` (default 30s for training; an inference job without
it serves until cancelled) and `federator.io/sim-startup` (time from launch to
Running, default 0.5s). `federator.io/sim-output-every` (a duration; none by default) has a running placement
say a line that often, so its output grows as a training run's does (`federator logs --follow`).

It holds a job's pod templates to the agent's pod security level as a real
member's agent does (`federator agent --sim ... --pod-security`): it creates no
pods, but a refusal here reads and travels as one there would, so demos and
tests of the federator's PodSecurity filter need no Kubernetes. It checks the
job's templates (the chosen alternative's merged over the job's, and the
workload object), not a rendered workload: there is none.

A finished placement is forgotten FINISHED_TTL_SECONDS after it ended, as a Kubernetes member deletes a
finished Job after its ttlSecondsAfterFinished. It kept every placement it had ever run before: ~1.4 KB of
agent memory each, all re-sent on every reconnect (outside SRE soak: 8.9 s until every cluster was Ready after
a restart at ~21k placements). The agent, not the backend, keeps what the contract asks of an ended placement
it no longer holds (its final phase, re-synced for lost_after_seconds; agent/agent.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field, replace

from federator.agent.backend import ReplicaOutput, UpdateCallback, no_update
from federator.backends.sim.fleet import ClusterSpec
from federator.backends.sim.nodes import NodeSet
from federator.logtail import MAX_TAIL_LINES, tail_bytes
from federator.model import ClusterCapacity, JobKind, JobPhase, JobSpec, Placement, Resources, placement_resources
from federator.model.pod_sets import largest_first
from federator.security.podsecurity import AGENT_FLAGS, PodSecurity
from federator.security.podsecurity_member import member_refusal, needed_by_texts
from federator.timestamps import utc_seconds

DURATION_ANNOTATION = "federator.io/sim-duration"
STARTUP_ANNOTATION = "federator.io/sim-startup"
OUTCOME_ANNOTATION = "federator.io/sim-outcome"  # "Succeeded" (default) or "Failed"
OUTPUT_EVERY_ANNOTATION = "federator.io/sim-output-every"  # a running placement says a line this often
ARRIVAL_ANNOTATION = "federator.io/sim-arrival"  # when `federator sim` offers the job (simulate/traces.py)
FINISHED_TTL_SECONDS = 60.0
"""How long a finished placement stays in `placements()` (real seconds, not scaled by --time-scale: what it
serves is the protocol's timing, not the job's): longer than a Launch may be delayed (the federator's order
max age, at most 10 s by default), so a Launch that raced its own end still finds it here."""
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$")


def duration_problem(text: str) -> str:
    """'' when `parse_duration` reads `text`, else what is wrong with it (a job's annotations are checked on
    Submit: a typo must not quietly run the default)."""
    if _DURATION.match(text):
        return ""
    return f"must be a duration such as '30s', '2m', '500ms' or '1.5' (seconds), got {text[:80]!r}"


def parse_duration(text: str, default: float) -> float:
    """'30s', '2m', '500ms', '1.5' -> seconds; the default when empty or malformed."""
    match = _DURATION.match(text or "")
    if not match:
        return default
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) * scale


def run_time(spec: JobSpec, time_scale: float = 1.0) -> float | None:
    """How long a simulated placement of `spec` runs: its `federator.io/sim-duration`, else 30 s for training; an
    inference job without one serves until cancelled (None), as a real member's Deployment does. Its replicas
    "finished after 30s" before, and a spread job then read Running with most of its replicas gone (outside QA)."""
    text = spec.annotation(DURATION_ANNOTATION)
    if not text and spec.kind is JobKind.INFERENCE:
        return None
    return parse_duration(text, 30.0) * time_scale


def _replicas(n: int) -> str:
    return f"{n} replica{'s' if n != 1 else ''}"


@dataclass(slots=True)
class _Run:
    placement: Placement
    phase: JobPhase
    task: asyncio.Task[None] | None = None
    forget: asyncio.TimerHandle | None = None  # set once finished: drops it from the backend
    # what happened to it, when (Unix seconds): its "output" (`logs`); the last MAX_TAIL_LINES kept
    events: list[tuple[float, str]] = field(default_factory=list)

    def said(self, what: str) -> None:
        self.events.append((time.time(), what))
        if len(self.events) > 2 * MAX_TAIL_LINES:
            del self.events[:-MAX_TAIL_LINES]

    def lines(self, *, timestamps: bool, since: float | None) -> list[str]:
        """Its events as lines of output: each dated to the second, and with `timestamps` first dated to the
        nanosecond as Kubernetes' timestamps=true dates a line; only those at or after `since`."""
        return [(f"{_nano(t)} " if timestamps else "") + f"{utc_seconds(t)} federator sim: {what}"
                for t, what in self.events if since is None or t >= since]


def _nano(t: float) -> str:
    """`t` as RFC 3339 to the nanosecond, as the kubelet dates a line of a pod's log."""
    whole = int(t)
    return f"{utc_seconds(whole)[:-1]}.{round((t - whole) * 1e9):09d}Z" if t - whole < 1 - 5e-10 else \
        utc_seconds(whole + 1)[:-1] + ".000000000Z"


class SimBackend:
    """A simulated member cluster driven by the asyncio clock."""

    def __init__(self, cluster: ClusterSpec, *, time_scale: float = 1.0,
                 pod_security: PodSecurity | None = None, finished_ttl: float = FINISHED_TTL_SECONDS) -> None:
        self.cluster = cluster
        self.finished_ttl = finished_ttl
        self.pod_security = pod_security  # None: no check (in-process simulations)
        self.nodes = NodeSet.of(cluster.nodes)
        self.time_scale = time_scale
        self._runs: dict[str, _Run] = {}
        self._on_update: UpdateCallback = no_update
        self._sequence = 0

    async def start(self, on_update: UpdateCallback) -> None:
        self._on_update = on_update

    async def stop(self) -> None:
        for run in self._runs.values():
            if run.task:
                run.task.cancel()
            if run.forget:
                run.forget.cancel()

    def capacity(self) -> ClusterCapacity:
        self._sequence += 1
        return self.nodes.capacity(sequence=self._sequence)

    def placements(self) -> dict[str, JobPhase]:
        return {pid: run.phase for pid, run in self._runs.items()}

    async def launch(self, placement: Placement, spec: JobSpec) -> str | None:
        pid = placement.placement_id
        if pid in self._runs:
            return None  # idempotent: this placement is already here
        if self.pod_security is not None:
            alternative = spec.accelerators[placement.alternative].pod_template_json \
                if 0 <= placement.alternative < len(spec.accelerators) else ""
            need = needed_by_texts(spec.pod_template_json, alternative, spec.workload_json, allowed_by=AGENT_FLAGS)
            found = need.refused(self.pod_security)
            if found:
                return member_refusal(self.cluster.name, self.pod_security, found, need)
        why = self.nodes.bind(pid, replicas=placement.replicas, resources=placement_resources(placement, spec),
                              accelerator_model=placement.accelerator_model, parts=_parts(placement, spec))
        if why is not None:
            return why
        run = _Run(placement, JobPhase.PLACED)
        run.said(f"placement {pid} launched on simulated cluster {self.cluster.name}: "
                 f"{_replicas(placement.replicas)} (no container runs here: these lines are the simulation's)")
        self._runs[pid] = run
        run.task = asyncio.get_running_loop().create_task(self._lifecycle(run, spec))
        return None

    async def resize(self, placement_id: str, generation: int, replicas: int) -> str | None:
        """Shrink a placement in place (agent.proto, Resize): its extra replicas stop and their room is free at once;
        the rest run on. Anything else (unknown, ended, another generation, not smaller) is left as it is."""
        run = self._runs.get(placement_id)
        if run is None or run.phase.is_terminal or run.placement.generation != generation \
                or not 0 < replicas < run.placement.replicas:
            return None
        was = run.placement.replicas
        self.nodes.shrink(placement_id, replicas)
        run.placement = replace(run.placement, replicas=replicas)
        if run.phase is JobPhase.RUNNING:
            self._on_update(placement_id, JobPhase.RUNNING,
                            f"{_replicas(replicas)} running on {self.cluster.name} (shrank from {was})",
                            nodes=self.nodes.nodes_of(placement_id))
        return None

    async def logs(self, placement_id: str, replica: int, container: str, tail_lines: int,
                   limit_bytes: int) -> list[ReplicaOutput] | str:
        """What the simulation did with a placement, as each replica's "output" (agent.proto, LogsRequest): a
        simulated cluster runs no container, so it says so rather than pretend to be one. Kept until the
        placement is forgotten (FINISHED_TTL_SECONDS after it ended), as a member keeps a finished Job's pods."""
        return self._output(placement_id, replica, container, tail_lines, limit_bytes, timestamps=False, since=None)

    async def logs_since(self, placement_id: str, replica: int, container: str, tail_lines: int, limit_bytes: int,
                         *, since: float | None) -> list[ReplicaOutput] | str:
        """As `logs`, each line dated first to the nanosecond, only those at or after `since` (agent.proto,
        LogsRequest.timestamps and since_time): what a follow reads."""
        return self._output(placement_id, replica, container, tail_lines, limit_bytes, timestamps=True, since=since)

    def _output(self, placement_id: str, replica: int, container: str, tail_lines: int, limit_bytes: int, *,
                timestamps: bool, since: float | None) -> list[ReplicaOutput] | str:
        run = self._runs.get(placement_id)
        if run is None:
            return f"placement {placement_id}: not held on simulated cluster {self.cluster.name}"
        if container:
            return f"container {container!r}: a simulated cluster runs no containers"
        every = run.lines(timestamps=timestamps, since=since)
        lines = every[-tail_lines:]
        text = "".join(f"{line}\n" for line in lines)
        replicas = range(run.placement.replicas) if replica < 0 else [replica] \
            if replica < run.placement.replicas else []
        if not replicas:
            return f"placement {placement_id} has no replica {replica} (it runs {_replicas(run.placement.replicas)})"
        share = max(1, limit_bytes // len(replicas))
        cut = tail_bytes(text, share)
        return [ReplicaOutput(i, "", "", cut, truncated=len(lines) < len(every) or cut != text)
                for i in replicas]

    async def cancel(self, placement_id: str) -> None:
        run = self._runs.get(placement_id)
        if run is None or run.phase.is_terminal:
            return
        if run.task:
            run.task.cancel()
        self._finish(run, JobPhase.CANCELLED, "cancelled")

    async def _lifecycle(self, run: _Run, spec: JobSpec) -> None:
        startup = parse_duration(spec.annotation(STARTUP_ANNOTATION), 0.5) * self.time_scale
        duration = run_time(spec, self.time_scale)
        await asyncio.sleep(startup)
        run.phase = JobPhase.RUNNING
        run.said("running")
        self._on_update(run.placement.placement_id, JobPhase.RUNNING,
                        f"{_replicas(run.placement.replicas)} running on {self.cluster.name}",
                        nodes=self.nodes.nodes_of(run.placement.placement_id))
        every = parse_duration(spec.annotation(OUTPUT_EVERY_ANNOTATION), 0.0) * self.time_scale
        if duration is None:  # a service: it serves until cancelled (talking, if it was told to)
            if every > 0:
                await self._talk(run, every)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + duration
        talk = loop.create_task(self._talk(run, every)) if every > 0 else None
        try:
            await asyncio.sleep(duration)
        finally:
            if talk is not None:
                talk.cancel()
        outcome = spec.annotation(OUTCOME_ANNOTATION, "Succeeded")
        phase = JobPhase.FAILED if outcome == "Failed" else JobPhase.SUCCEEDED
        # The run ended when it was due, however late this wakes (the agent paused: agent/ended.py): its scheduled
        # end on the wall clock, as a member's pod says its finishedAt.
        self._finish(run, phase, f"failed after {duration:g}s (exit code 1)" if phase is JobPhase.FAILED
                     else f"finished after {duration:g}s", ended_at=time.time() - max(0.0, loop.time() - due))

    @staticmethod
    async def _talk(run: _Run, every: float) -> None:
        """A line of output every `every` seconds while it runs (OUTPUT_EVERY_ANNOTATION)."""
        step = 0
        while True:
            await asyncio.sleep(every)
            step += 1
            run.said(f"step {step}")

    def _finish(self, run: _Run, phase: JobPhase, message: str, *, ended_at: float | None = None) -> None:
        """End a run: `ended_at` when the workload ended (wall clock), None for now (a cancel, said as it happens)."""
        run.phase = phase
        run.said(f"{phase}: {message}")
        self.nodes.unbind(run.placement.placement_id)
        self._on_update(run.placement.placement_id, phase, message, ended_at=ended_at)
        run.forget = asyncio.get_running_loop().call_later(self.finished_ttl, self._forget, run)

    def _forget(self, run: _Run) -> None:
        pid = run.placement.placement_id
        if self._runs.get(pid) is run:
            del self._runs[pid]


def _parts(placement: Placement, spec: JobSpec) -> tuple[tuple[int, Resources], ...]:
    """(pods, per-pod resources) of a whole gang of unequal pod sets (JobSpec.pod_sets, which the launch carries),
    bound set by set as its workload's pods would bind on a member; () for equal replicas, and for a job stored
    before 0.20.0 (none: held as replicas x resources by the federator, and bound so here)."""
    if not spec.pod_sets or sum(p.count for p in spec.pod_sets) != placement.replicas:
        return ()
    return tuple((p.count, p.resources) for p in largest_first(spec.pod_sets))
