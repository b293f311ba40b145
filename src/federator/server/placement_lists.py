"""A stream's placement list, rebuilt from the reports that say it as a change (agent.proto, PlacementDelta).

Why: a report listing every placement id costs ~27 bytes a placement; 2,003 placements sent 26.7 KB/s at rest,
past what a slow link to a remote member carries (outside WAN QA W3). A new agent says what changed since an earlier
report of the stream; this module turns that back into the full list as the report arrives, before the rate limit,
the lane and everything downstream, which see a report that listed its placements in full, as before. So a report
held over the rate and replaced by a newer one loses no change: each held report carries its whole list.

The agent's word is checked, never trusted: a delta that does not fit the list held (an id removed that it does not
hold, one added twice, a count or digest that differs) is refused naming the field, and a delta whose base is not
the list held (a report refused before its list was read) is not the agent's fault; either way the report is not
taken and the agent is asked once for its full list (`ListWanted`), the deltas until then dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from federator.api.placement_lists import digest, id_hash
from federator.api.v1 import agent_pb2
from federator.security.limits import RejectReason
from federator.server.validation import Refusal, check_placement_id

FIELD = "capacity.placement_delta"
ASK_AGAIN_AFTER = 15
"""Deltas dropped unanswered after an ask before it is made again: the full list the agent sent back may have been
refused before its list was read (oversized), or the ask lost with a closing outbox. Not sooner: over a slow link
several deltas cross the ask, and each full list costs that link ~27 bytes a placement."""


@dataclass(slots=True)
class PlacementList:
    """The list of the latest report of one stream that said one, as the next delta's base."""

    ids: set[str] | None = None  # None: none held (no report said one yet, or a delta could not be applied)
    sequence: int = 0  # the report that said it
    digest: int = 0
    wanted: bool = False  # the full list was asked for; deltas until it comes are dropped unanswered
    dropped: int = 0  # deltas dropped unanswered since the last ask (ASK_AGAIN_AFTER)


class AskReason(StrEnum):
    """Why the full list is asked for: the `reason` of federator_agent_placement_list_asks_total (bounded)."""

    NO_LIST = "no_list"  # the stream holds no list (a delta as a stream's first report, or after one not applied)
    OTHER_BASE = "other_base"  # the delta's base is not the report whose list is held (one between was refused)
    MALFORMED = "malformed"  # the delta contradicts the list held: the agent broke the contract, refused too


@dataclass(frozen=True, slots=True)
class Unapplied:
    """A delta not applied: the report is not taken. `wanted`: why the full list is asked for ("" when it was
    asked already); `refusal`: the agent broke the contract (an Error too, counted as a refused report); `reason`:
    the kind of `wanted`, for the metric."""

    wanted: str
    refusal: Refusal | None = None
    reason: AskReason = AskReason.NO_LIST


def rebuild(held: PlacementList, report: agent_pb2.CapacityReport) -> Unapplied | None:
    """Make `report` list its placements in full (in place), from its delta and the list `held`, and keep its list
    as the next base; None when it does (or says no list: a member_unreachable report), else why not."""
    if report.member_unreachable:
        if report.HasField("placement_delta"):  # it says no list, so no change to one either (secqa61 L1)
            problem = (f"{FIELD}: set beside capacity.member_unreachable; a report that says the member cluster is "
                       "unreachable says no list, and carries no delta (send the delta, or the full list, in the "
                       "first report without member_unreachable)")
            return Unapplied("", Refusal(RejectReason.MALFORMED, problem), AskReason.MALFORMED)
        return None  # says no list and is no base (agent.proto, CapacityReport.member_unreachable)
    if not report.HasField("placement_delta"):
        held.ids, held.sequence, held.wanted = set(report.placement_ids), report.sequence, False
        held.digest = digest(held.ids)
        return None
    delta = report.placement_delta
    if held.ids is None:
        return _unapplied(held, report, f"{FIELD}: this stream holds no list to apply it to (a delta's base is a "
                                        "report of the same stream that said a list; the first report of a stream "
                                        "lists its placements in full)", reason=AskReason.NO_LIST)
    if delta.base_sequence != held.sequence:
        return _unapplied(held, report, f"{FIELD}.base_sequence: {delta.base_sequence} is not the report whose "
                                        f"list the federator holds ({held.sequence}): a report between was not "
                                        "read (refused before its list)", reason=AskReason.OTHER_BASE)
    problem = _contradiction(held, report)
    if problem:
        return _unapplied(held, report, problem, Refusal(RejectReason.MALFORMED, problem), reason=AskReason.MALFORMED)
    ids = held.ids
    value = held.digest
    for pid in delta.removed:
        ids.discard(pid)
        value ^= id_hash(pid)
    for pid in delta.added:
        ids.add(pid)
        value ^= id_hash(pid)
    held.sequence, held.digest = report.sequence, value
    report.placement_ids.extend(sorted(ids))
    report.ClearField("placement_delta")
    return None


def _contradiction(held: PlacementList, report: agent_pb2.CapacityReport) -> str:
    """Why the delta does not fit the list held, naming the field; "" when it does."""
    assert held.ids is not None
    delta = report.placement_delta
    if report.placement_ids:
        return (f"capacity.placement_ids: {len(report.placement_ids)} id(s) beside {FIELD}; a report says its "
                "list either in full or as a delta, not both")
    removed: set[str] = set()
    for i, pid in enumerate(delta.removed):
        bad = check_placement_id(f"{FIELD}.removed[{i}]", pid)
        if bad is not None:
            return bad.message
        if pid not in held.ids or pid in removed:
            return (f"{FIELD}.removed[{i}]: {pid!r} is not in the list of report {held.sequence}"
                    f"{' (removed twice)' if pid in removed else ''}")
        removed.add(pid)
    added: set[str] = set()
    for i, pid in enumerate(delta.added):
        bad = check_placement_id(f"{FIELD}.added[{i}]", pid)
        if bad is not None:
            return bad.message
        if pid in added or (pid in held.ids and pid not in removed):
            return (f"{FIELD}.added[{i}]: {pid!r} is already in the list"
                    f"{' (added twice)' if pid in added else f' of report {held.sequence}'}")
        if pid in removed:
            return f"{FIELD}.added[{i}]: {pid!r} is removed by the same delta (an id is in one of them or neither)"
        added.add(pid)
    count = len(held.ids) - len(removed) + len(added)
    if delta.count != count:
        return (f"{FIELD}.count: {delta.count}, but the list of report {held.sequence} ({len(held.ids)} ids) with "
                f"this change holds {count}")
    value = held.digest
    for pid in (*removed, *added):
        value ^= id_hash(pid)
    if delta.digest != value:
        return (f"{FIELD}.digest: {delta.digest:#018x}, but the list it says hashes to {value:#018x}: the agent's "
                f"list and the federator's differ (the list of report {held.sequence}, changed as said)")
    return ""


def _unapplied(held: PlacementList, report: agent_pb2.CapacityReport, why: str,
               refusal: Refusal | None = None, *, reason: AskReason) -> Unapplied:
    """Drop the list held and ask for the full one, once until it comes."""
    held.ids = None
    if held.wanted and refusal is None and held.dropped + 1 < ASK_AGAIN_AFTER:
        held.dropped += 1
        return Unapplied("", reason=reason)
    held.wanted, held.dropped = True, 0
    return Unapplied(f"report {report.sequence}: {why}", refusal, reason)


__all__ = ["ASK_AGAIN_AFTER", "FIELD", "AskReason", "PlacementList", "Unapplied", "rebuild"]
