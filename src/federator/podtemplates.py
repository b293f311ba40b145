"""A job's pod templates as a member renders them: an accelerator alternative's template over the job's.

Its own module because three parties must merge alike and none may import the
others: the federator checks the merged template at submit (`server/templates`),
the agent renders it for the chosen alternative (`backends/kube`) and checks it
against the member's own pod security level, and the scheduler reads what it
needs of a member's level (`security/podsecurity.needed_by`). Pure: plain dicts
in and out.
"""

from __future__ import annotations

from typing import Any


def merged_over(base: Any, over: Any) -> Any:
    """`over` merged into `base`: mappings key by key, lists (containers) item by position. How an accelerator
    alternative's template overrides the job's (the agent renders it; the federator checks it at submit)."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merged_over(base.get(k), v) for k, v in over.items()}}
    if isinstance(base, list) and isinstance(over, list):
        return [merged_over(b, o) for b, o in zip(base, over, strict=False)] + base[len(over):] + over[len(base):]
    return over


__all__ = ["merged_over"]
