"""The federator's Errors to this agent: counted by reason, and logged once, not at every report.

Why: a report the federator refuses (or takes only clamped) is refused again at every report, every 2 s: the
agent logged the same WARNING each time, and nothing counted it, so a provider whose cluster was over its
maxAccelerators saw a flood it learned to ignore while the capacity view stayed frozen (outside provider QA F4).
Now each Error is counted in `federator_agent_messages_rejected_total{reason}` (the reason bounded to the
contract's words), and an Error about the reports (no placement) is logged once per reason per stream: at ERROR
when it means part of the member's capacity is not seen or not offered (`implausible_report`, `over_bound`), at
WARNING otherwise, and at DEBUG after. An Error about a placement is agent/federator_errors.py's.
"""

from __future__ import annotations

import logging

from federator.security.limits import RejectReason

OVER_BOUND = "over_bound"  # agent.proto Error: the report was taken clamped to the provider's maxAccelerators
INCONSISTENT_REPORT = "inconsistent_report"
OTHER = "other"  # a reason this agent does not know (a newer federator's): the metric's label stays bounded
REASONS = frozenset({r.value for r in RejectReason} | {OVER_BOUND, INCONSISTENT_REPORT})
LOUD = frozenset({RejectReason.IMPLAUSIBLE_REPORT.value, OVER_BOUND})


def reason_label(reason: str) -> str:
    """The metric label of an Error's reason: itself if the contract names it, else `other`."""
    return reason if reason in REASONS else OTHER


class Rejections:
    """Which report Errors were logged on the current stream."""

    def __init__(self) -> None:
        self._said: set[str] = set()

    def new_stream(self) -> None:
        """A new stream: each reason is said again once (the operator may have changed something)."""
        self._said.clear()

    def level(self, reason: str) -> int:
        """The log level of an Error of `reason` about the reports. (An Error about a placement never comes here:
        the agent hands it to its Error log, agent/federator_errors.py, which says each while it lasts.)"""
        label = reason_label(reason)
        if label in self._said:
            return logging.DEBUG
        self._said.add(label)
        return logging.ERROR if label in LOUD else logging.WARNING


__all__ = ["LOUD", "OVER_BOUND", "REASONS", "Rejections", "reason_label"]
