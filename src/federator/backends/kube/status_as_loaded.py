"""What a FederatedJob's status said when the leader loaded it: a write that would say the same is not sent.

Why: a new leader (a restart, a failover, an upgrade) hears every job again, each running job from its agent's
re-sync and each pending one from its first cycle's reasons; a job whose state the leader holds differently from how
it was rebuilt (a field the status derives, not reads back) is written although the object would read the same.
QA kubescaleqa62 H1 counted ~1,000 status writes at 1,300 stable FederatedJobs on a restart, new FederatedJobs
waiting behind them for up to 78 s. A digest of each loaded job's status is kept until a write differs from it
(then the object says something else, and the digest goes) or the job is forgotten: a few dozen bytes a job, not
the status itself.

Compared: the fields the store's write sets (`fields`: the keys of the status it builds, KubeJobStore._status_of;
the store takes the digest of a loaded status and of one about to be written with the one method, `_said`, and sends
a write that sets a field the loaded digest did not count), as a JSON merge patch leaves them on the object (a null
is the field's absence: the API server prunes nulls of fields its schema does not call nullable; 2.0 reads back as
2), but the ones derived from the clock (`CLOCK_FIELDS`), which are "as of the status's writing" and would make
every write of a running job a change. The fields other writers keep in the status (the reservations' clocks, the
last move, an array's or a dependency's words) are not the store's, so not compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

# Status fields derived from the clock at the write, never read back: left as the last write set them
CLOCK_FIELDS = frozenset({"totalRunSeconds"})


def digest(status: Mapping[str, Any], fields: Iterable[str]) -> bytes:
    """What `fields` of a status say, as the object holds them (a loaded status, or one about to be written)."""
    said = {k: v for k in fields if k not in CLOCK_FIELDS and (v := _plain(status.get(k))) is not None}
    return hashlib.blake2b(json.dumps(said, sort_keys=True, separators=(",", ":")).encode(), digest_size=16).digest()


def _plain(value: Any) -> Any:
    """A value as the object holds it: no null in a map (pruned), lists' items likewise, 2.0 as 2."""
    if isinstance(value, Mapping):
        return {k: p for k, v in value.items() if (p := _plain(v)) is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


__all__ = ["CLOCK_FIELDS", "digest"]
