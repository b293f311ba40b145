"""The one reading of a time a CLI flag takes: `get jobs --since` and `usage --since/--until`.

Why a module: the two commands read a bare date differently, `get jobs` as local midnight (as users.md says) and
`usage` as UTC midnight, so a month's report and the month's job list were hours apart, and with a zone far from
UTC `usage --since TODAY` was a time in the future (outside QA, HPC H7). Both read through here, in the local
zone unless the time names one, and say times back in that zone.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from federator.timestamps import utc_exact

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FORMS = "an ISO 8601 date or time (2026-12-05, 2026-12-05T09:00, 2026-12-05T09:00Z), unix seconds or an age (90m, " \
        "24h, 7d)"
"""What a time flag takes, for its help and its errors."""


def parse_time(value: str, *, now: float) -> float:
    """`value` as unix seconds: an ISO 8601 date or time, in the local zone unless it names one (a bare date is
    local midnight); unix seconds; or an age back from `now`. ValueError says what was expected."""
    text = value.strip()
    age = _AGE.match(text)
    if age:
        seconds = now - float(age.group(1)) * _UNIT[age.group(2)]
    else:
        try:
            seconds = float(text)
        except ValueError:
            try:
                seconds = dt.datetime.fromisoformat(text).timestamp()  # naive: local time, as the docs say
            except ValueError:
                raise ValueError(f"expected {FORMS}, got {value[:80]!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"must be a time after 1970, got {value[:80]!r}")
    return seconds


def local_text(t: float) -> str:
    """`t` in the local zone, RFC 3339 with its offset (`2026-12-07T00:00:00+14:00`), `Z` where that is UTC; to
    the microsecond only when it has one, as timestamps.utc_exact writes a time."""
    try:
        local = dt.datetime.fromtimestamp(t).astimezone()
    except (ValueError, OverflowError, OSError):  # past 9999 here (a window stored in ms by 0.14.0: fuzz QA F1)
        return utc_exact(t)  # as the federator writes it, or `t=... (not a date)`: never a traceback
    text = local.isoformat(timespec="seconds")
    if local.microsecond:  # 2026-12-06T01:16:40.5Z, as timestamps.utc_exact writes it
        text = text[:19] + f".{local.microsecond:06d}".rstrip("0") + text[19:]
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def zone_said(t: float | None = None) -> str:
    """The local zone as a reader needs it: `UTC`, or `UTC+14:00 (+14)`, its offset at `t` (default now)."""
    local = dt.datetime.fromtimestamp(t if t is not None else dt.datetime.now().timestamp()).astimezone()
    offset = local.utcoffset() or dt.timedelta(0)
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    name = local.tzname() or ""
    return f"UTC{sign}{hours:02d}:{mins:02d}" + (f" ({name})" if name and not name.startswith(("+", "-")) else "")
