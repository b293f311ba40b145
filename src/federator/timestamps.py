"""UTC timestamps as the federator writes them: RFC 3339 with a Z, to the second or the microsecond.

One module for every place a time is written (a job's message, a FederatedJob's Event, the usage
report, the audit log, a Lease, a Kubernetes status), so they all read alike and a reader can
compare them by eye. Seconds where a person reads the time; microseconds where Kubernetes expects a
MicroTime (Lease, Event series) or where lines must sort within a second (the audit log). A length
of time (`duration`) is written as Go, and so kubectl, writes one.

Total: a time no datetime holds (past 9999-12-31, NaN, a stored value a peer sent) is written as what it is, never
raised: one cordon row or log line must not stop a scheduling cycle or a restart (outside fuzz QA F1: a window in
milliseconds read as seconds, year 59009, stopped every cycle and every restart). Peer-supplied times are refused
past LATEST where they are read (`time_problem`), so only a row an older federator stored gets here.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

LATEST = 253402300799.0
"""9999-12-31T23:59:59Z, the last second a time the federator is sent may name (what a datetime, and so RFC 3339,
can write): past it a value is refused naming its field (types.proto says so of every time a client sends)."""


def time_problem(t: float) -> str | None:
    """What is wrong with `t` as a time a client or agent sent (Unix seconds; 0: not given), or None."""
    if not math.isfinite(t) or t < 0:
        return f"must be a finite unix time >= 0, got {t!r}"
    if t > LATEST:
        hint = " (a time in milliseconds? send seconds)" if 1e9 <= t / 1000 <= LATEST else ""  # 2001 to 9999
        return f"must be at most {LATEST:.0f} (9999-12-31T23:59:59Z), got {t!r}{hint}"
    return None


def _utc(t: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(t, UTC)
    except (ValueError, OverflowError, OSError):  # past 9999 or time_t, NaN
        return None


def utc_seconds(t: float) -> str:
    """`t` (Unix seconds) as 2026-12-03T08:54:42Z; a `t` no date holds as `t=1.8e+12 (not a date)`."""
    at = _utc(t)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else f"t={t!r} (not a date)"


def utc_micro(t: float) -> str:
    """`t` (Unix seconds) as 2026-12-03T08:54:42.123456Z, Kubernetes' MicroTime (as utc_seconds when no date)."""
    at = _utc(t)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if at is not None else utc_seconds(t)


def utc_exact(t: float) -> str:
    """`t` (Unix seconds) to the microsecond it holds: 2026-12-03T08:54:42Z when whole, else
    2026-12-03T08:54:42.5Z. Where a time bounds an amount (a usage report's window), so the window printed is
    the window counted (outside billing QA F5: a bill for [..58.5, ..04.5) printed ..58Z to ..04Z)."""
    whole, at = utc_seconds(t), _utc(t)
    if at is None:
        return whole
    micro = at.microsecond
    return whole if not micro else f"{whole[:-1]}.{micro:06d}".rstrip("0") + "Z"


def duration(seconds: float) -> str:
    """Whole seconds as Go writes a duration: 2h30m5s, 10m0s, 45s (a job's run time beside its limit)."""
    s = max(0, int(seconds))
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h{m}m{sec}s" if h else f"{m}m{sec}s" if m else f"{sec}s"
