"""UTC timestamps as the federator writes them: RFC 3339 with a Z, to the second or the microsecond.

One module for every place a time is written (a job's message, a FederatedJob's Event, the usage
report, the audit log, a Lease, a Kubernetes status), so they all read alike and a reader can
compare them by eye. Seconds where a person reads the time; microseconds where Kubernetes expects a
MicroTime (Lease, Event series) or where lines must sort within a second (the audit log). A length
of time (`duration`) is written as Go, and so kubectl, writes one.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_seconds(t: float) -> str:
    """`t` (Unix seconds) as 2026-12-03T08:54:42Z."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_micro(t: float) -> str:
    """`t` (Unix seconds) as 2026-12-03T08:54:42.123456Z, Kubernetes' MicroTime."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_exact(t: float) -> str:
    """`t` (Unix seconds) to the microsecond it holds: 2026-12-03T08:54:42Z when whole, else
    2026-12-03T08:54:42.5Z. Where a time bounds an amount (a usage report's window), so the window printed is
    the window counted (outside billing QA F5: a bill for [..58.5, ..04.5) printed ..58Z to ..04Z)."""
    whole = utc_seconds(t)
    micro = datetime.fromtimestamp(t, UTC).microsecond
    return whole if not micro else f"{whole[:-1]}.{micro:06d}".rstrip("0") + "Z"


def duration(seconds: float) -> str:
    """Whole seconds as Go writes a duration: 2h30m5s, 10m0s, 45s (a job's run time beside its limit)."""
    s = max(0, int(seconds))
    h, m, sec = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h{m}m{sec}s" if h else f"{m}m{sec}s" if m else f"{sec}s"
