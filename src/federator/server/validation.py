"""Checks of an agent's messages against the agent contract (proto/federator/v1/agent.proto).

An agent is a separate program, possibly a third party's, so its messages are
checked, never trusted: a message that breaks the contract is refused with a
counted reason (`federator_messages_rejected_total{reason}`) and an Error back
on the stream, and the stream goes on. Kept apart from the transport
(`server/services.py`) and the state machine (`server/federator.py`): these are
pure functions of a message, what this stream has sent before, and what the
federator believes of a placement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from federator.api import convert
from federator.api.v1 import agent_pb2, types_pb2
from federator.model import ClusterCapacity, JobPhase
from federator.security.limits import RejectReason

_NOT_REPORTED = (types_pb2.JOB_PHASE_UNSPECIFIED, types_pb2.JOB_PHASE_PENDING)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: RejectReason
    message: str
    placement_id: str = ""


@dataclass(slots=True)
class StreamChecks:
    """What one agent stream has said so far, for the checks that depend on it (the report sequence)."""

    last_sequence: int | None = None

    def check(self, msg: agent_pb2.AgentMessage, *, phase_of: Callable[[str], JobPhase | None]) -> Refusal | None:
        """None if the message may be applied, else why not. `phase_of` gives the federator's phase of a
        placement current on this agent's cluster (None if it is not)."""
        kind = msg.WhichOneof("body")
        if kind is None:
            return Refusal(RejectReason.EMPTY_MESSAGE,
                           "message: no body set; send one of hello (first only), capacity, job_update, ack")
        if kind == "hello":
            return Refusal(RejectReason.SECOND_HELLO, "hello: only the first message of a stream is a Hello")
        if kind == "job_update":
            return check_update(msg.job_update, phase_of(msg.job_update.placement_id))
        if kind == "ack":
            return check_ack(msg.ack, phase_of(msg.ack.placement_id))
        if kind == "capacity":
            seq = msg.capacity.sequence
            if self.last_sequence is not None and seq < self.last_sequence:
                return Refusal(RejectReason.STALE_REPORT, f"capacity.sequence: {seq} is lower than this stream's "
                                                          f"previous report ({self.last_sequence})")
        return None

    def accepted_report(self, sequence: int) -> None:
        self.last_sequence = sequence


def check_update(update: agent_pb2.JobUpdate, current: JobPhase | None) -> Refusal | None:
    """A placement moves forward only: Placed -> Running -> a terminal phase; an agent never reports Pending."""
    pid = update.placement_id[:200]
    if update.phase in _NOT_REPORTED:
        name = types_pb2.JobPhase.Name(update.phase) if update.phase in types_pb2.JobPhase.values() else update.phase
        return Refusal(RejectReason.BAD_TRANSITION,
                       f"job_update.phase: an agent reports Placed, Running or a final phase, not {name}", pid)
    if update.phase not in types_pb2.JobPhase.values():
        return None  # undecodable: the wire decoder refuses it as malformed
    phase = convert.phase_from_pb(update.phase)
    if current is JobPhase.RUNNING and phase is JobPhase.PLACED:
        return Refusal(RejectReason.BAD_TRANSITION,
                       f"job_update.phase: placement {pid} is Running; it cannot go back to Placed", pid)
    return None


def check_ack(ack: agent_pb2.Ack, current: JobPhase | None) -> Refusal | None:
    """An Ack answers a Launch this cluster was sent: one for a placement that is not current on the sender's
    cluster (another cluster's, one never sent, one superseded since) is refused and changes nothing. Without
    this an agent could cancel, with `ok = false`, a placement running on another cluster, and fill the
    federator's memory with `ok = true` for ids it made up."""
    if current is not None:
        return None
    pid = ack.placement_id[:200]
    return Refusal(RejectReason.UNEXPECTED,
                   f"ack.placement_id: {pid!r} is not a placement of this cluster (an Ack answers a Launch sent to "
                   "it; this one changes nothing)", pid)


def check_plausible(cap: ClusterCapacity) -> str | None:
    """None if a capacity report adds up, else what does not, naming the field: free never exceeds allocatable,
    allocatable never exceeds total, and no single node has more free than the whole cluster."""
    for i, pool in enumerate(cap.accelerator_pools):
        where = f"capacity.accelerator_pools[{i}]"
        in_use_or_free = pool.free_accelerators + sum(n for _, n in pool.shared_devices)
        if pool.allocatable_accelerators > pool.total_accelerators:
            return (
                f"{where}.allocatable_accelerators: {pool.allocatable_accelerators} is more than total_accelerators "
                f"{pool.total_accelerators}"
            )
        if in_use_or_free > pool.allocatable_accelerators:
            return (f"{where}.nodes_by_free: {pool.free_accelerators} whole free GPUs and "
                    f"{in_use_or_free - pool.free_accelerators} shared ones are more than allocatable_accelerators "
                    f"{pool.allocatable_accelerators}")
    for part, whole in _AT_MOST:  # free within allocatable; a node's most free within the cluster's free
        if getattr(cap, part) > getattr(cap, whole):
            return f"capacity.{part}: {getattr(cap, part)} is more than {whole} {getattr(cap, whole)}"
    return None


_AT_MOST = (("cpu_milli_free", "cpu_milli_allocatable"), ("memory_bytes_free", "memory_bytes_allocatable"),
            ("node_cpu_milli_free_max", "cpu_milli_free"), ("node_memory_bytes_free_max", "memory_bytes_free"))


def error_message(refusal: Refusal) -> agent_pb2.FederatorMessage:
    return agent_pb2.FederatorMessage(error=agent_pb2.Error(reason=refusal.reason.value, message=refusal.message,
                                                            placement_id=refusal.placement_id))


__all__ = ["Refusal", "StreamChecks", "check_ack", "check_plausible", "check_update", "error_message"]
