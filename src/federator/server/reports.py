"""A member's capacity reports over its rate limit: the newest is kept and applied when the limit allows.

Why not drop what is over the rate (what it did): the report dropped is the
newest, so after a burst the federator kept an older capacity, possibly one
saying nodes were free that no longer were, until the agent's next report, and
a conforming agent sends that only report_interval_seconds later. Coalescing
keeps the limit on how often the scheduler's view of a member changes and never
leaves it behind the agent: of the reports that arrive over the rate, only the
latest waits (a newer one replaces it; within a stream sequences never go
back, `validation.StreamChecks`), and it is applied as soon as a token is
free, unless a newer report was applied first. So no report is applied out of
sequence order, and the newest always wins. Each report replaced unapplied is
counted as `rate_limited`.

A refused report is charged too (decided, outside fuzz QA F6): its size was spent decoding and checking it, the CPU
the budget bounds, so a hostile agent's 1 MB malformed reports must not be free. But its Error says so, with when
the next report will be applied (`charged`): a corrected report held silently for a minute read as acceptance.

What waits is the report as it came (the wire message): it is decoded and
checked only when it is applied, so a flood of reports over the rate costs the
event loop a token and a sequence check each, as dropping them did.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from federator.api.v1 import agent_pb2
from federator.security.limits import TokenBucket
from federator.server.validation import Refusal

Report = agent_pb2.CapacityReport


@dataclass(slots=True)
class ReportGate:
    """One stream's report rate limit, holding at most one report: the newest over the rate.

    `volume`, when set, is a second budget in bytes (Limits.report_bytes_per_second): a report passes while
    the stream is within it (the bucket holds a token), and its whole size is then charged, so the next report
    waits until the debt is paid. Decoding and checking a report costs CPU in proportion to its size
    (~70 ms for 190 KB; on the loop until 0.11.0, now in a worker thread that shares the interpreter with it:
    server/report_lane.py), so 50 clusters each sending 190 KB every 2 s, well within the count, held the loop;
    with the byte budget a big report waits (coalesced) instead. Charging after the fact, not asking for the
    whole size first, keeps the burst small (two seconds of budget) and still lets a report of any legal size
    pass: a full bucket of a megabyte a stream let 50 streams' first reports stall the loop for 17 s at once.
    """

    bucket: TokenBucket
    held: Report | None = None
    timer: asyncio.TimerHandle | None = None  # applies `held` when a token is free (server/agent_service.py)
    volume: TokenBucket | None = None

    def _take(self, report: Report) -> bool:
        if self.volume is not None and self.volume.wait() > 0:
            return False
        if not self.bucket.take():
            return False
        if self.volume is not None:
            self.volume.charge(report.ByteSize())  # a millisecond for 200 KB: only for a report applied
        return True

    def offer(self, report: Report) -> tuple[Report | None, bool]:
        """(the report to apply now, or None if it is held; whether an older held report was dropped for it)."""
        dropped = self.held is not None
        if self._take(report):
            self.held = None  # older than this one: never applied
            return report, dropped
        self.held = report
        return None, dropped

    def release(self) -> Report | None:
        """The held report if the rate allows it now (it is no longer held), else None."""
        if self.held is None or not self._take(self.held):
            return None
        report, self.held = self.held, None
        return report

    def closing(self) -> Report | None:
        """At the stream's end, the held report if the byte budget has room for it now (charged), else None:
        applying every held report as its stream closed let a provider reconnecting in a loop have two big
        reports applied per short stream, past any budget (red team re-test: 18 times the budget)."""
        report, self.held = self.held, None
        if report is None or (self.volume is not None and self.volume.wait() > 0):
            return None
        if self.volume is not None:
            self.volume.charge(report.ByteSize())
        return report

    def due(self) -> float:
        """Seconds until the held report may be applied."""
        wait = self.bucket.wait()
        if self.volume is not None:
            wait = max(wait, self.volume.wait())
        return wait

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


NOTE_WAIT_SECONDS = 1.0
"""A refused report's Error names the byte budget's wait from this long on (shorter: a conforming agent's)."""


def charged(gate: ReportGate | None, refusal: Refusal, size: int) -> Refusal:
    """`refusal` of a report of `size` bytes, saying, when the cluster's byte budget holds its next report a while,
    that this one was charged and when the next is applied (agent.proto, "Byte budget")."""
    wait = gate.volume.wait() if gate is not None and gate.volume is not None else 0.0
    if wait < NOTE_WAIT_SECONDS:
        return refusal
    return replace(refusal, message=f"{refusal.message} (this refused report's {size} bytes are charged to the "
                                    f"byte budget as any report's: the next report is applied in {wait:.0f}s, "
                                    "the newest one sent by then)")


__all__ = ["NOTE_WAIT_SECONDS", "ReportGate", "charged"]
