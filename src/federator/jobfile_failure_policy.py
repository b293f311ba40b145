"""`spec.failurePolicy` of a job file (a FederatedJob's too): read and checked, and written back.

Why its own module: jobfile.py is long, and the field is a concern of its own (model/failure_policy.py says what
it means, server/failure_restarts.py keeps it). As the rest of the job file, a bad value is named by its field
path and what it must be, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from federator.model import MAX_RESTARTS_LIMIT, FailurePolicy
from federator.termtext import shown

FIELD = "spec.failurePolicy"
KEYS = ("maxRestarts",)

Bad = Callable[[str, str], None]


def parse_failure_policy(value: object, bad: Bad) -> FailurePolicy:
    """spec.failurePolicy: `maxRestarts`, 0 to MAX_RESTARTS_LIMIT; absent = 0 (a failure is final)."""
    if value is None:
        return FailurePolicy()
    if not isinstance(value, Mapping):
        bad(FIELD, f"must be a mapping (maxRestarts), got {shown(value)}")
        return FailurePolicy()
    for key in value:
        if key not in KEYS:
            bad(f"{FIELD}.{str(key)[:63]}", f"is not a known field (known: {', '.join(KEYS)})")
    count = value.get("maxRestarts", 0)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_RESTARTS_LIMIT:
        bad(f"{FIELD}.maxRestarts", f"must be an integer from 0 to {MAX_RESTARTS_LIMIT} (how many times the job "
                                    f"is placed again after it fails; 0 or left out: never), got {shown(count)}")
        return FailurePolicy()
    return FailurePolicy(max_restarts=count)


def failure_policy_document(policy: FailurePolicy) -> dict[str, Any]:
    """spec.failurePolicy as a job file writes it (what `parse_failure_policy` reads back)."""
    return {"maxRestarts": policy.max_restarts}


__all__ = ["FIELD", "failure_policy_document", "parse_failure_policy"]
