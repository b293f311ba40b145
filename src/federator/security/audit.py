"""The audit log: one JSON line per mutating call, accepted or refused.

`federator serve --audit-log PATH` (or `-` for stdout) writes a line for every
Submit, Cancel and Scale over the job API, every change to a Queue object it sees
(Kubernetes mode), every certificate revocation it loads from a revocation
list, and every FederatedJob it refuses. The file is opened for appending and
each line is flushed when written, so `tail -f` and log shippers see it at
once; rotate it with copytruncate (or send stdout to your collector).

Fields of a line (docs/security.md has the table)::

    {"time": "2026-11-30T18:40:01.123456Z",  RFC 3339, UTC
     "action": "submit",                      submit | cancel | cancel.bulk | scale | hold | ... (ACTIONS)
     "identity": {"user": "alice", "groups": ["team-a"], "via": "certificate", "admin": false},
     "object": {"kind": "Job", "namespace": "default", "name": "train", "queue": "research", "job_id": "train-1a2b3c"},
     "result": "accepted",                    accepted | refused | failed
     "code": "OK",                            the gRPC status code name the caller got
     "rule": "queue-access",                  the tenancy rule that decided ("" when none applied)
     "message": "...",                        why, for a refusal
     "request_id": "...",                     the client's request id, when it sent one
     "operation": "bulk-...",                 a bulk cancel's id (CancelJobs), on its lines only
     "actor": {"user": "portal", ...},        a delegate's call (tenancy.delegates): the delegate, whose
     "on_behalf_of": "alice"}                 call ran as `identity` (the user it acted for)

Writing is best effort and never fails a call: a full disk logs an error
(once a minute) and the call goes on.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from federator.paths import make_parent
from federator.security.authz import Principal
from federator.timestamps import utc_micro

log = logging.getLogger("federator.audit")

ACTIONS = ("submit", "cancel", "cancel.bulk", "scale", "hold", "release", "cordon", "uncordon", "drain", "forget",
           "queue.change", "certificate.revoke", "federatedjob.refuse", "policy.reload", "delegate", "logs",
           "cluster.register", "cluster.region-change")
RESULTS = ("accepted", "refused", "failed")


class AuditLog:
    """Appends audit lines to a file, stdout (`-`), or nowhere (None: lines are only counted)."""

    def __init__(self, target: str | Path | None, *, clock: Callable[[], float] = time.time,
                 on_line: Callable[[str, str], None] | None = None) -> None:
        self.clock = clock
        self.on_line = on_line  # (action, result): the metrics counter
        self._lock = threading.Lock()
        self._out: IO[str] | None = None
        self._owned = False
        self._last_error = float("-inf")
        if target is None:
            return
        if str(target) == "-":
            self._out = sys.stdout
        else:
            path = Path(target)
            make_parent(path)
            self._out = path.open("a", encoding="utf-8")
            self._owned = True

    def record(self, action: str, *, identity: Principal | None, obj: Mapping[str, Any], result: str,
               code: str = "OK", rule: str = "", message: str = "", request_id: str = "",
               operation: str = "") -> dict[str, Any]:
        assert action in ACTIONS and result in RESULTS, (action, result)
        line: dict[str, Any] = {
            "time": utc_micro(self.clock()), "action": action,
            "identity": identity.to_json() if identity is not None else None,
            "object": dict(obj), "result": result, "code": code, "rule": rule, "message": message[:2000],
        }
        if request_id:
            line["request_id"] = request_id
        if operation:  # a bulk cancel's id, on its `cancel.bulk` line and on each job's `cancel`
            line["operation"] = operation
        if identity is not None and identity.actor is not None:  # a delegate's call: who sent it, for whom
            line["actor"] = identity.actor.to_json()
            line["on_behalf_of"] = identity.user
        if self.on_line is not None:
            self.on_line(action, result)
        if self._out is not None:
            text = json.dumps(line, separators=(",", ":"), sort_keys=False) + "\n"
            with self._lock:
                try:
                    self._out.write(text)
                    self._out.flush()
                except (OSError, ValueError) as exc:
                    now = time.monotonic()
                    if now - self._last_error > 60:
                        self._last_error = now
                        log.error("the audit log cannot be written: %s", exc)
        return line

    def close(self) -> None:
        with self._lock:
            if self._owned and self._out is not None:
                self._out.close()
            self._out = None


__all__ = ["ACTIONS", "RESULTS", "AuditLog"]
