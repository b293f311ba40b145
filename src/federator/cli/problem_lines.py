"""A refusal of many problems said as a person reads it: how many, the first few one a line, how many more.

Why: `federator sim --workload` over a file whose 262 documents share one mistake (every `sim-duration` negative)
printed the first 100 problems on one line of about 17,000 characters (outside QA, planners P10). The first few
and the count say it; the rest are most often the same mistake. A refusal of a few problems stays one line.
"""

from __future__ import annotations

from federator.jobfile import JobFileError

SHOWN = 5
"""Problems a refusal shows one a line before it counts the rest."""


def problem_lines(exc: BaseException, shown: int = SHOWN) -> list[str]:
    """`exc` as lines to print: a JobFileError (itself or the cause of the error raised, such as sim's TraceError)
    of more than `shown` problems as its file and count, then its first `shown` problems indented, then how many
    more; anything else as its one line."""
    cause = exc if isinstance(exc, JobFileError) else exc.__cause__
    if not isinstance(cause, JobFileError) or cause.total <= shown:
        return [str(exc)]
    source = f"{cause.source}: " if cause.source else ""
    return [f"{source}{cause.total} problems; the first {shown}:",
            *(f"  {p}" for p in cause.problems[:shown]),
            f"  and {cause.total - shown} more"]


__all__ = ["SHOWN", "problem_lines"]
