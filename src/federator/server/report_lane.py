"""A stream's capacity reports, decoded and checked off the event loop and applied on it in the order they came.

Why: decoding a report (api/convert.capacity_from_pb) and checking it (validation.check_report_fields,
security/limits.check_capacity, validation.check_plausible) costs time in proportion to its size: ~70 ms for a
192 KB report, during which the loop served no other call, stream or timer; a provider's 50 clusters of such
reports held every user's List for seconds (docs/benchmarks.md, "A provider's flood of clusters"). That work reads
the report and nothing else, so it runs in a worker thread (`asyncio.to_thread`, the executor the store's writes
already use off the loop; not the scheduling cycle's one-thread executor, behind which a report would wait out a
whole cycle). The thread shares the interpreter's lock, so it saves no CPU; it gives the loop back its turn every
few milliseconds (the switch interval) instead of once per report. What it finds is applied on the loop, where the
federator's state lives: the trust file's bounds, the provider's maintenance flag, the capacity itself.

Order: a stream's reports are examined one at a time, each applied before the next is examined (each waits for the
one before it), and the stream handles its next message only once its lane is idle (agent_service._read), so
neither a later report nor anything the agent sent after a report is applied before it. A report held over the rate and
released by its timer, or kept as its stream ends, goes through the same lane, after the one in flight. What
decides whether a report is examined at all, the rate and the byte budget (server/reports.py) and the message's
size and sequence checks, stays on the loop, before any of this, so a flood over the budget costs no thread time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.model import ClusterCapacity
from federator.security.limits import RejectReason, check_capacity
from federator.server.validation import Refusal, check_plausible, check_report_fields

log = logging.getLogger("federator.server")

Report = agent_pb2.CapacityReport


@dataclass(frozen=True, slots=True)
class Examined:
    """What examining a report found: its capacity, or the refusal naming the field."""

    capacity: ClusterCapacity | None
    refusal: Refusal | None = None
    fields_ok: bool = True  # its fields are within bounds: its maintenance flag may be taken even if refused later


def examine(report: Report) -> Examined:
    """Decode a report and check it (everything that reads the report alone); safe to run off the loop."""
    problem = check_report_fields(report)
    if problem is not None:
        return Examined(None, Refusal(RejectReason.MALFORMED, problem), fields_ok=False)
    try:
        cap = convert.capacity_from_pb(report)
        problem = check_capacity(cap)
        if problem is not None:
            raise convert.WireError(problem)
    except convert.WireError as exc:
        return Examined(None, Refusal(RejectReason.MALFORMED, f"capacity: {str(exc)[:400]}"))
    implausible = check_plausible(cap)
    if implausible:
        return Examined(None, Refusal(RejectReason.IMPLAUSIBLE_REPORT, implausible))
    return Examined(cap)


class ReportLane:
    """One stream's reports in flight: `submit` examines each off the loop, after the one before it, then hands it
    to `apply` on the loop."""

    def __init__(self, apply: Callable[[Report, Examined], object]) -> None:
        self._apply = apply
        self._tail: asyncio.Task[None] | None = None

    def submit(self, report: Report) -> None:
        """Examine `report` after every report submitted before it, then apply it. Without a running loop (a
        stream torn down by the garbage collector) it is examined and applied here and now."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._apply(report, examine(report))
            return
        self._tail = loop.create_task(self._run(self._tail, report))

    async def idle(self) -> None:
        """Wait until every report submitted is applied. Cancelling the waiter leaves them to finish."""
        while self._tail is not None and not self._tail.done():
            await asyncio.wait([self._tail])

    async def _run(self, before: asyncio.Task[None] | None, report: Report) -> None:
        if before is not None and not before.done():
            await asyncio.wait([before])
        try:
            examined = await asyncio.to_thread(examine, report)
            self._apply(report, examined)
        except Exception:  # a bug (examine names every problem of the agent's input): logged, and the lane goes on
            log.exception("applying a capacity report failed")


__all__ = ["Examined", "ReportLane", "examine"]
