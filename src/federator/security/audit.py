"""The audit log: one JSON line per mutating call, accepted or refused.

`federator serve --audit-log PATH` (or `-` for stdout) writes a line for every
Submit, Cancel and Scale over the job API, every change to a Queue object it sees
(Kubernetes mode), every certificate revocation it loads from a revocation
list, and every FederatedJob it refuses; and, with no identity (the federator's
own doing), where each job ran: every placement made (`place`), every one that
ended while its job went on (`unplace`: re-queued, preempted, drained, moved),
and every job's end (`finish`), written by server/audit_trail.py. The file is
created mode 0600 (its lines name users and their jobs: personal data; an
existing file keeps its mode) and opened for appending; each line is flushed
when written, so `tail -f` and log shippers see it at once; rotate it with
copytruncate (or send stdout to your collector).

Why a writer thread: placements come by the thousand a minute on a national
federation, on the event loop; a write and flush per line there would stall it
behind the disk (or a collector's full pipe on stdout). `record` only encodes
the line and queues it; the writer thread writes what is queued in batches,
each batch flushed, in the order recorded (bench/audit_burst.py). `close`
writes what is queued before it returns.

Tamper evidence (security/audit_chain.py): `seq` numbers the lines and goes
on across restarts (the file's last line is read at open), and `prev` is the
SHA-256 of the line before, so a deleted or edited line breaks the chain at
the line after it (`federator audit verify FILE`). A file with no chain to
continue (new, empty, stdout, a last line cut short) starts one, with a first
line `audit.chain-start` saying why. Both are computed where the line is
encoded, under the lock that orders the lines: a hash of a few hundred bytes
beside the encoding (bench/audit_burst.py).

Fields of a line (docs/security.md has the table)::

    {"time": "2026-11-30T18:40:01.123456Z",  RFC 3339, UTC
     "seq": 17,                               this line's number in its chain (1, 2, ...; across restarts)
     "prev": "9f86d0...",                     SHA-256 hex of the line before it ("" on a chain's first line)
     "action": "submit",                      submit | cancel | cancel.bulk | scale | hold | ... (ACTIONS)
     "identity": {"user": "alice", "groups": ["team-a"], "via": "certificate", "admin": false},
     "object": {"kind": "Job", "namespace": "default", "name": "train", "queue": "research", "job_id": "train-1a2b3c"},
     "result": "accepted",                    accepted | refused | failed | unchanged (nothing to do)
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
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from federator.paths import make_parent
from federator.security.audit_chain import CHAIN_START, Resume, digest, resume
from federator.security.authz import Principal
from federator.timestamps import utc_micro

log = logging.getLogger("federator.audit")

ACTIONS = ("submit", "submit.check", "cancel", "cancel.bulk", "scale", "hold", "release", "cordon", "uncordon", "drain",
           "forget", "queue.change", "certificate.revoke", "federatedjob.refuse", "policy.reload", "delegate", "logs",
           "place", "unplace", "finish", "cluster.register", "cluster.region-change", "cancel.orphans", CHAIN_START)
FILE_MODE = 0o600  # a new audit file's mode: its lines are personal data (user and job names)
BATCH_LINES = 512  # the writer thread writes at most this many lines per write and flush
# unchanged: allowed, and there was nothing to do (a Cancel of a job that had already ended)
RESULTS = ("accepted", "refused", "failed", "unchanged")


class AuditLog:
    """Appends audit lines to a file, stdout (`-`), or nowhere (None: lines are only counted)."""

    def __init__(self, target: str | Path | None, *, clock: Callable[[], float] = time.time,
                 on_line: Callable[[str, str], None] | None = None, background: bool = False) -> None:
        """`background`: lines written by a thread of their own (`federator serve`), never on the caller's; else on
        the caller's, each flushed before `record` returns (a tool, a test)."""
        self.clock = clock
        self.on_line = on_line  # (action, result): the metrics counter
        self._out: IO[str] | None = None
        self._owned = False
        self._last_error = float("-inf")
        self._seq = 0
        self._prev = ""  # the hash of the last line encoded: the next line's `prev`
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._queued = self._written = 0
        self._writer: threading.Thread | None = None
        if target is None:
            return
        if str(target) == "-":
            self._out = sys.stdout
            at = Resume(reason="stdout: the lines before this start are the collector's to keep")
        else:
            path = Path(target)
            make_parent(path)
            at = resume(path)  # before opening: a file not there yet is a new chain
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            self._out = os.fdopen(fd, "a", encoding="utf-8")
            self._owned = True
        self._seq, self._prev = at.seq, at.prev
        if at.reason:  # written before the writer thread starts: the file's first line of this chain
            self.record(CHAIN_START, identity=None, result="accepted", message=f"a new chain: {at.reason}",
                        obj={"kind": "AuditLog", "file": str(target), "reason": at.reason,
                             **({"torn": True} if at.torn else {})})
        if background:
            self._writer = threading.Thread(target=self._write_queued, name="audit-writer", daemon=True)
            self._writer.start()

    def record(self, action: str, *, identity: Principal | None, obj: Mapping[str, Any], result: str,
               code: str = "OK", rule: str = "", message: str = "", request_id: str = "",
               operation: str = "") -> dict[str, Any]:
        assert action in ACTIONS and result in RESULTS, (action, result)
        line: dict[str, Any] = {
            "time": utc_micro(self.clock()), "seq": 0, "prev": "", "action": action,
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
        with self._done:  # numbered and queued under one lock: the file holds the lines in `seq` order
            self._seq += 1
            line["seq"] = self._seq
            if self._out is not None:  # encoded here: the writer thread holding the GIL to encode slowed the caller
                line["prev"] = self._prev
                text = json.dumps(line, separators=(",", ":")) + "\n"
                self._prev = digest(text.encode())
                if self._writer is not None:
                    self._queued += 1
                    self._queue.put(text)
                else:
                    self._put([text])
        return line

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every line recorded so far is written (tests, `close`); False if `timeout` passed first."""
        with self._done:
            return self._done.wait_for(lambda: self._written >= self._queued, timeout)

    def _write_queued(self) -> None:
        """The writer thread: writes what is queued, a batch at a time, each flushed; ends at `close`'s None."""
        while True:
            first = self._queue.get()
            batch = [first] if first is not None else []
            while first is not None and len(batch) < BATCH_LINES:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    first = None
                    break
                batch.append(more)
            self._put(batch)
            with self._done:
                self._written += len(batch)
                self._done.notify_all()
            if first is None:
                return

    def _put(self, lines: list[str]) -> None:
        """Write and flush lines; an error is logged (once a minute), never raised."""
        if not lines or self._out is None:
            return
        try:
            self._out.write("".join(lines))
            self._out.flush()
        except (OSError, ValueError) as exc:
            now = time.monotonic()
            if now - self._last_error > 60:
                self._last_error = now
                log.error("the audit log cannot be written: %s", exc)

    def close(self) -> None:
        """Write what is queued, then close the file (stdout is left open)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join()
        if self._owned and self._out is not None:
            self._out.close()
        self._out = None


__all__ = ["ACTIONS", "FILE_MODE", "RESULTS", "AuditLog"]
