"""Checks of an agent's messages against the agent contract (proto/federator/v1/agent.proto).

An agent is a separate program, possibly a third party's, so its messages are
checked, never trusted: a message that breaks the contract is refused with a
counted reason (`federator_messages_rejected_total{reason}`) and an Error back
on the stream, and the stream goes on. Kept apart from the transport
(`server/agent_service.py`) and the state machine (`server/federator.py`): these are
pure functions of a message, what this stream has sent before, and what the
federator believes of a placement.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from federator.api import convert
from federator.api.seals import MAX_SEAL_CHARS
from federator.api.v1 import agent_pb2, types_pb2
from federator.model import ClusterCapacity, JobPhase
from federator.model.cluster import DRA_SUFFIX
from federator.security.limits import RejectReason
from federator.server.reapplied import digest_problem
from federator.termtext import visible

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
                           "message: no body set; send one of hello (first only), capacity, job_update, ack, logs")
        if kind == "hello":
            return Refusal(RejectReason.SECOND_HELLO, "hello: only the first message of a stream is a Hello")
        if kind == "job_update":
            return check_placement_id("job_update.placement_id", msg.job_update.placement_id) or \
                check_update(msg.job_update, phase_of(msg.job_update.placement_id))
        if kind == "ack":
            return check_placement_id("ack.placement_id", msg.ack.placement_id) or \
                check_ack(msg.ack, phase_of(msg.ack.placement_id))
        if kind == "capacity":  # its fields are checked when it is applied (check_report_fields; reports.py)
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
    if update.phase not in types_pb2.JobPhase.values():  # refused here, not by the decoder: with its placement
        return Refusal(RejectReason.MALFORMED, f"job_update.phase: unknown job phase {update.phase}", pid)
    phase = convert.phase_from_pb(update.phase)
    if current is JobPhase.RUNNING and phase is JobPhase.PLACED:
        return Refusal(RejectReason.BAD_TRANSITION,
                       f"job_update.phase: placement {pid} is Running; it cannot go back to Placed", pid)
    if update.admission_overdue and phase is not JobPhase.PLACED:
        return Refusal(RejectReason.MALFORMED,
                       f"job_update.admission_overdue: only a Placed placement waits for admission; {pid} is "
                       f"reported {phase}", pid)
    if update.lost and phase is not JobPhase.FAILED:
        return Refusal(RejectReason.MALFORMED,
                       f"job_update.lost: only a Failed placement is reported lost; {pid} is reported {phase}", pid)
    digest = digest_problem(update.job_digest)  # said back as the Launch said it (server/reapplied.py)
    if digest is not None:
        return Refusal(RejectReason.MALFORMED, digest, pid)
    for field, seal in (("launch_seal", update.launch_seal), ("cancel_seal", update.cancel_seal)):  # seals.py
        if len(seal) > MAX_SEAL_CHARS or not (seal.isascii() and seal.isprintable()):  # goagentqa62 H1: ASCII only
            return Refusal(RejectReason.MALFORMED, f"job_update.{field}: must be empty or at most {MAX_SEAL_CHARS} "
                                                   "printable ASCII characters (the seal its Launch or Cancel sent, "
                                                   f"said back unchanged), got {seal[:40]!r}", pid)
    model = update.accelerator_model  # checked against the job and the pools where read (server/adoption.py)
    if model and (len(model) > MAX_NODE_NAME_CHARS or not _PLACEMENT_ID.fullmatch(model)):
        return Refusal(RejectReason.MALFORMED, f"job_update.accelerator_model: must be empty or at most "
                                               f"{MAX_NODE_NAME_CHARS} printable ASCII characters without spaces "
                                               f"(the Launch's placement.accelerator_model), got {model[:80]!r}", pid)
    return check_nodes(update, pid)


MAX_NODE_ENTRIES = 1024
MAX_NODE_NAME_CHARS = 253


def check_nodes(update: agent_pb2.JobUpdate, pid: str) -> Refusal | None:
    """JobUpdate.nodes: at most MAX_NODE_ENTRIES entries, each a node name of printable ASCII without spaces and
    at least one replica, no node twice (agent.proto)."""
    if not update.nodes:
        return None
    if len(update.nodes) > MAX_NODE_ENTRIES:
        return Refusal(RejectReason.MALFORMED, f"job_update.nodes: at most {MAX_NODE_ENTRIES} entries, got "
                                               f"{len(update.nodes)}", pid)
    seen: set[str] = set()
    for i, e in enumerate(update.nodes):
        if not 0 < len(e.node) <= MAX_NODE_NAME_CHARS or not _PLACEMENT_ID.fullmatch(e.node):
            return Refusal(RejectReason.MALFORMED, f"job_update.nodes[{i}].node: must be 1 to {MAX_NODE_NAME_CHARS} "
                                                   f"printable ASCII characters without spaces, got {e.node[:80]!r}",
                           pid)
        if e.replicas < 1:
            return Refusal(RejectReason.MALFORMED, f"job_update.nodes[{i}].replicas: must be at least 1 (node "
                                                   f"{e.node!r})", pid)
        if e.node in seen:
            return Refusal(RejectReason.MALFORMED, f"job_update.nodes[{i}].node: {e.node!r} is named twice", pid)
        seen.add(e.node)
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


# Bounds of what an agent may say (agent.proto states each). Generous for real members, tight enough that
# nothing an agent says breaks the federator's arithmetic, logs, metrics labels or memory.
MAX_PLACEMENT_ID_CHARS = 512  # JOB.gGEN.CLUSTER: a 253-character job name, its suffix, a 63-character cluster
MAX_CPU_MILLI = 1 << 50  # ~10^15 milli-CPUs (10^12 cores): more than any cluster, far from int64's end
MAX_MEMORY_BYTES = 1 << 60  # 1 EiB
MAX_DEVICE_MEMORY_MIB = 1 << 30  # 1 PiB on one device
MAX_MODEL_CHARS = 128
MAX_AGENT_VERSION_CHARS = 256
MAX_FEATURES = 32  # Hello.features: optional parts of the contract, by name
_PLACEMENT_ID = re.compile(r"[!-~]+")  # printable ASCII, no space: federator-made ids are DNS names and digits
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")  # as node labels and DRA product names (spaces -> '-') give
_VENDOR = re.compile(r"[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?")  # lower case, as the catalog's names (api/pool_vendor.py)
# A Kubernetes extended resource: an optional DNS-subdomain prefix, then a name as in a label key.
_RESOURCE = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                       r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_CPU_FIELDS = ("cpu_milli_allocatable", "cpu_milli_free", "node_cpu_milli_free_max", "largest_node_cpu_milli")
_MEMORY_FIELDS = ("memory_bytes_allocatable", "memory_bytes_free", "node_memory_bytes_free_max",
                  "largest_node_memory_bytes")


MAX_AGENT_MESSAGE_CHARS = 4096  # JobUpdate.message, Ack.message: kept at most this long (agent.proto)


def agent_text(text: str) -> str:
    """Free text an agent sends that users read (JobUpdate.message, Ack.message): cut to
    MAX_AGENT_MESSAGE_CHARS, then each control character written as its escape (termtext.visible), so a
    member's message never drives a user's terminal (it sent `\x1b[2J\x1b[31m` and a bell)."""
    return visible(text[:MAX_AGENT_MESSAGE_CHARS])


def check_placement_id(field: str, pid: str) -> Refusal | None:
    """A placement id from an agent: at most MAX_PLACEMENT_ID_CHARS printable ASCII characters, no spaces."""
    if len(pid) <= MAX_PLACEMENT_ID_CHARS and _PLACEMENT_ID.fullmatch(pid):
        return None
    return Refusal(RejectReason.MALFORMED, f"{field}: must be a placement id of 1 to {MAX_PLACEMENT_ID_CHARS} "
                                           f"printable ASCII characters without spaces, got {pid[:80]!r}"
                                           f"{f' ({len(pid)} characters)' if len(pid) > 80 else ''}")


def check_report_fields(report: agent_pb2.CapacityReport) -> str | None:
    """None if every field of a report is within agent.proto's bounds, else the first that is not, named.

    What the wire decoder (api/convert.py) does not check: lengths and character sets of the names (they reach
    logs, metrics, node selectors and the catalog), unit_milli outside MIG, and CPU and memory so large that
    sums over a fleet leave int64."""
    for name in _CPU_FIELDS:
        if getattr(report, name) > MAX_CPU_MILLI:
            return f"capacity.{name}: {getattr(report, name)} is over the bound of {MAX_CPU_MILLI} milli-CPUs"
    for name in _MEMORY_FIELDS:
        if getattr(report, name) > MAX_MEMORY_BYTES:
            return f"capacity.{name}: {getattr(report, name)} is over the bound of {MAX_MEMORY_BYTES} bytes"
    for j, r in enumerate(report.node_room):
        if r.cpu_milli > MAX_CPU_MILLI or r.memory_bytes > MAX_MEMORY_BYTES:
            return (f"capacity.node_room[{j}]: CPU {r.cpu_milli} or memory {r.memory_bytes} is over the bound of "
                    f"{MAX_CPU_MILLI} milli-CPUs and {MAX_MEMORY_BYTES} bytes")
    for i, pid in enumerate(report.placement_ids):
        bad = check_placement_id(f"capacity.placement_ids[{i}]", pid)
        if bad is not None:
            return bad.message
    for i, pool in enumerate(report.accelerator_pools):
        problem = _pool_problem(pool, f"capacity.accelerator_pools[{i}]")
        if problem is not None:
            return problem
    return None


def _pool_problem(pool: agent_pb2.AcceleratorPool, where: str) -> str | None:
    model = pool.accelerator_model
    if model and (len(model) > MAX_MODEL_CHARS or not _MODEL.fullmatch(model)):
        return (f"{where}.accelerator_model: must be 1 to {MAX_MODEL_CHARS} letters, digits, '.', '_', '+' or '-', "
                f"starting with a letter or digit (such as NVIDIA-H100-80GB-HBM3), got {model[:80]!r}")
    if pool.vendor and not _VENDOR.fullmatch(pool.vendor):
        return (f"{where}.vendor: must be a catalog vendor name of at most 63 lower-case letters, digits, '.', '_' "
                f"or '-' (such as nvidia; the catalog's names are lower case), got {pool.vendor[:80]!r}")
    name = pool.resource_name
    dra_class = name.removesuffix(DRA_SUFFIX) if name.endswith(DRA_SUFFIX) else None
    if dra_class is not None:  # a DRA pool: its DeviceClass, which is a DNS subdomain
        if len(dra_class) > 253 or not _SUBDOMAIN.fullmatch(dra_class):
            return (f"{where}.resource_name: a DRA pool names its DeviceClass, a DNS subdomain such as "
                    f"gpu.nvidia.com, before '{DRA_SUFFIX}'; got {name[:80]!r}")
    elif name and (len(name.rpartition("/")[0]) > 253 or not _RESOURCE.fullmatch(name)):
        return (f"{where}.resource_name: must be a Kubernetes extended resource name (such as nvidia.com/gpu), "
                f"or a DRA DeviceClass followed by '{DRA_SUFFIX}' (such as 'gpu.nvidia.com{DRA_SUFFIX}'), "
                f"got {name[:80]!r}")
    if pool.sharing != "MIG" and pool.unit_milli != 0:
        return f"{where}.unit_milli: must be 0 unless sharing is MIG, got {pool.unit_milli}"
    if pool.memory_mib > MAX_DEVICE_MEMORY_MIB:
        return f"{where}.memory_mib: {pool.memory_mib} is over the bound of {MAX_DEVICE_MEMORY_MIB} MiB"
    rooms = [("host_room", r.cpu_milli, r.memory_bytes) for r in pool.host_room]
    rooms += [("shared_room", r.cpu_milli, r.memory_bytes) for r in pool.shared_room]
    rooms += [("room_classes", r.cpu_milli, r.memory_bytes) for r in pool.room_classes]
    for field, cpu, memory in rooms:
        if cpu > MAX_CPU_MILLI or memory > MAX_MEMORY_BYTES:
            return (f"{where}.{field}: CPU {cpu} or memory {memory} is over the bound of {MAX_CPU_MILLI} milli-CPUs "
                    f"and {MAX_MEMORY_BYTES} bytes")
    return None


def check_hello_fields(hello: agent_pb2.Hello) -> str | None:
    """What check_hello (security/limits.py) leaves to this module: the Hello's free-text fields, bounded."""
    if len(hello.agent_version) > MAX_AGENT_VERSION_CHARS or not hello.agent_version.isprintable():
        return (f"hello.agent_version: must be at most {MAX_AGENT_VERSION_CHARS} printable characters, got "
                f"{len(hello.agent_version)} characters starting {hello.agent_version[:40]!r}")
    if len(hello.gang_admission) > 63 or not hello.gang_admission.isprintable():
        return f"hello.gang_admission: must be \"kueue\", \"none\" or empty, got {hello.gang_admission[:40]!r}"
    if len(hello.features) > MAX_FEATURES:
        return f"hello.features: at most {MAX_FEATURES} names, got {len(hello.features)}"
    for i, name in enumerate(hello.features):
        if not name or len(name) > 63 or not name.isprintable():
            return f"hello.features[{i}]: must be 1 to 63 printable characters, got {name[:40]!r}"
    return None


def check_plausible(cap: ClusterCapacity) -> str | None:
    """None if a capacity report adds up, else what does not, naming the field: free (and with it what quota
    holds) never exceeds allocatable, allocatable never exceeds total, and no single node has more free than the
    whole cluster."""
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
        if in_use_or_free + pool.quota_held_accelerators > pool.allocatable_accelerators:
            return (f"{where}.quota_held_accelerators: {pool.quota_held_accelerators} held by quota, with "
                    f"{in_use_or_free} free or shared, are more than allocatable_accelerators "
                    f"{pool.allocatable_accelerators}")
        largest = pool.largest_node_accelerators
        if largest and largest > pool.total_accelerators:
            return (f"{where}.largest_node_accelerators: {largest} on one node is more than total_accelerators "
                    f"{pool.total_accelerators}")
        most_free = max((b for b, n in enumerate(pool.nodes_by_free) if n), default=0)
        if largest and largest < most_free:
            return (f"{where}.largest_node_accelerators: {largest} installed on the largest node, but "
                    f"nodes_by_free says a node has {most_free} free")
    for part, whole in _AT_MOST:  # free within allocatable; a node's most free within the cluster's free
        if getattr(cap, part) > getattr(cap, whole):
            return f"capacity.{part}: {getattr(cap, part)} is more than {whole} {getattr(cap, whole)}"
    for size, room in _LARGEST_NODE:  # a node's size, when said, holds at least what is free on it
        if 0 < getattr(cap, size) < getattr(cap, room):
            return f"capacity.{size}: {getattr(cap, size)} is less than {room} {getattr(cap, room)}"
    for j, (cpu, memory, _) in enumerate(cap.node_room):  # node room: each node, and all, within the free
        if cpu > cap.cpu_milli_free or memory > cap.memory_bytes_free:
            return (f"capacity.node_room[{j}]: one node's free CPU {cpu} and memory {memory} are more than the "
                    f"cluster's free (cpu_milli_free {cap.cpu_milli_free}, memory_bytes_free {cap.memory_bytes_free})")
    room_cpu = sum(c * n for c, _, n in cap.node_room)
    room_memory = sum(m * n for _, m, n in cap.node_room)
    if room_cpu > cap.cpu_milli_free or room_memory > cap.memory_bytes_free:
        return (f"capacity.node_room: its nodes together have {room_cpu} milli-CPUs and {room_memory} bytes free, "
                f"more than the cluster's free (cpu_milli_free {cap.cpu_milli_free}, memory_bytes_free "
                f"{cap.memory_bytes_free})")
    for i, pool in enumerate(cap.accelerator_pools):  # one node's room within the cluster's free
        rooms = [("host_room", j, c, m) for j, (c, m) in enumerate(pool.host_room)]
        rooms += [("shared_room", j, c, m) for j, (_, c, m) in enumerate(pool.shared_room)]
        rooms += [("room_classes", j, c, m) for j, (_, c, m, _) in enumerate(pool.room_classes)]
        for field, j, cpu, memory in rooms:
            if cpu > cap.cpu_milli_free or memory > cap.memory_bytes_free:
                return (f"capacity.accelerator_pools[{i}].{field}[{j}]: one node's free CPU {cpu} and memory {memory} "
                        f"are more than the cluster's free (cpu_milli_free {cap.cpu_milli_free}, memory_bytes_free "
                        f"{cap.memory_bytes_free})")
    return None


_AT_MOST = (("cpu_milli_free", "cpu_milli_allocatable"), ("memory_bytes_free", "memory_bytes_allocatable"),
            ("node_cpu_milli_free_max", "cpu_milli_free"), ("node_memory_bytes_free_max", "memory_bytes_free"))
_LARGEST_NODE = (("largest_node_cpu_milli", "node_cpu_milli_free_max"),
                 ("largest_node_memory_bytes", "node_memory_bytes_free_max"))


def error_message(refusal: Refusal) -> agent_pb2.FederatorMessage:
    return agent_pb2.FederatorMessage(error=agent_pb2.Error(reason=refusal.reason.value, message=refusal.message,
                                                            placement_id=refusal.placement_id))


__all__ = ["MAX_AGENT_MESSAGE_CHARS", "MAX_PLACEMENT_ID_CHARS", "Refusal", "StreamChecks", "agent_text", "check_ack",
           "check_hello_fields", "check_placement_id", "check_plausible", "check_report_fields", "check_update",
           "error_message"]
