"""How the agent logs the federator's Errors: a refusal as a refusal, a warning about an applied report as that,
each once per what it is about rather than once per report.

Two Errors answer a report the federator DID apply (agent.proto, `Error`): `inconsistent_report` and
`unexpected` naming capacity.placement_ids. The agent logged both as "the federator refused a message", the
message itself ending "the report is applied", and it logged it every 2 s while the state lasted: a node deleted
under a gang left its pod bound until pod garbage collection, 32 WARNING lines in a minute (outside provider QA
F2). So an applied report's warning says "applied, but", and an Error is logged again only when what it says
changes (the same reason, placement and words, numbers aside), or after `REPEAT_SECONDS`: a state that lasts is
still seen in the log, not at every report. A refused capacity report (`malformed` pools, say) is such an Error:
the agent has no word of the refusal ending (the federator answers only what it refuses), so its clearing is in
the federator's log (server/refused_reports.py) and `get clusters`, not here; federator_agent_messages_rejected_total
counts every one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

APPLIED_REASONS = frozenset({"inconsistent_report"})
"""Error reasons that answer a message the federator applied anyway."""
REPEAT_SECONDS = 600.0
"""How long the same Error stays unlogged after it was logged once."""


def _applied(reason: str, message: str) -> bool:
    return reason in APPLIED_REASONS or (reason == "unexpected" and "capacity.placement_ids" in message)


class ErrorLog:
    """Logs the federator's Errors, each (reason, placement, words less their numbers) once per `REPEAT_SECONDS`."""

    def __init__(self, log: logging.Logger, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.clock = clock
        self._logged: dict[tuple[str, str, str], float] = {}

    def error(self, reason: str, message: str, placement_id: str = "") -> bool:
        """Log one Error of the federator's; False when it repeats one logged lately (not logged)."""
        key = (reason, placement_id, re.sub(r"\d+", "N", message))
        now = self.clock()
        last = self._logged.get(key)
        if last is not None and now - last < REPEAT_SECONDS:
            return False
        if len(self._logged) > 1000:  # bounded: old keys go
            self._logged = {k: t for k, t in self._logged.items() if now - t < REPEAT_SECONDS}
        self._logged[key] = now
        about = f", placement {placement_id}" if placement_id else ""
        if _applied(reason, message):
            self.log.warning("the federator applied a report but does not trust part of it (%s%s): %s (logged once "
                             "while it lasts)", reason, about, message)
        else:
            self.log.warning("the federator refused a message (%s%s): %s (logged again when it changes, or every "
                             "%gs while it lasts)", reason, about, message, REPEAT_SECONDS)
        return True


__all__ = ["APPLIED_REASONS", "REPEAT_SECONDS", "ErrorLog"]
