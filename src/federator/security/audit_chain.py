"""The audit log's hash chain: each line names the SHA-256 of the line before it, so a deleted or edited line shows.

Why (outside compliance QA, C4): the lines were plain JSON with a `seq` counted from 1 at each start; a deleted
line was a gap only within one run, an edited one undetectable, and a restart began the numbers again. Now:

- `prev`: the SHA-256 (hex) of the previous line's bytes as written, without its newline ("" on a line that starts
  a chain). A line deleted, edited or moved breaks the `prev` of the line after it;
- `seq` goes on across restarts: at open the federator reads the file's last line (`resume`) and continues its
  chain, `seq` and `prev`;
- a new chain starts, with a first line `audit.chain-start` (seq 1, prev "") saying why, when there is no chain to
  continue: a new or empty file (a first start, or a file rotated by copytruncate while the federator was down),
  stdout (`--audit-log -`, whose earlier lines it cannot read), a last line that is not an audit line, or one cut
  short (a crash while writing: the federator ends it with a newline first, and says so: `torn`).

A file rotated by copytruncate while the federator runs goes on with the same chain: its first line's `prev`
names the last line of the rotated file. `federator audit verify FILE...` (cli/audit.py) checks files oldest first
as one chain (`verify`), and names the first line that breaks it.

A rollback to a release before 0.15.0 on the same file (outside upgrade QA U4): that release appends lines with
no `prev` and `seq` from 1 at each start, after the chained ones. `verify` used to call the first of them an edit;
it is not one it can tell from an older release's run, so it names them (`older`: where, seq from 1, and that they
are not checked) and goes on: the chain of the federator that ran on after them continues from the last of them
(its `prev` names that line), and is checked. A line with no `prev` after chained ones whose `seq` is not 1 (where
such a run begins) is still a break. `audit verify` exits 3 for it, neither "holds" nor "broken".

What it proves: whoever holds a later line (a log shipper's copy, a hash noted from `verify`'s output) can tell
that the lines before it are the ones that were written. It is not a signature: someone who may rewrite the whole
file can compute a new chain, so ship the lines off the host (docs/security.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

CHAIN_START = "audit.chain-start"
TAIL_BYTES = 1 << 16  # read this much of the file's end at a time to find its last line


def digest(line: bytes) -> str:
    """A line's hash as the next line's `prev` names it: SHA-256 hex of its bytes without the newline."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a file's chain stands at open: the last line's `seq` and hash to continue from, or why a new chain
    starts (`reason` non-empty; `torn`: the file's last line was cut short, and ended with a newline)."""

    seq: int = 0
    prev: str = ""
    reason: str = ""
    torn: bool = False


def resume(path: Path) -> Resume:
    """Read the last line of the audit file at `path` (None-safe: a missing or empty file starts a chain)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return Resume(reason="a new file")
    if size == 0:
        return Resume(reason="an empty file (new, or rotated by copytruncate while the federator was down)")
    last = _last_line(path, size)
    if not last.endswith(b"\n"):
        with path.open("ab") as f:  # end the torn line, so the next line is a line of its own
            f.write(b"\n")
        return Resume(reason=f"the file's last line was cut short ({len(last)} bytes, a crash while writing?)",
                      torn=True)
    try:
        doc = json.loads(last)
    except ValueError:
        doc = None
    seq = doc.get("seq") if isinstance(doc, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return Resume(reason="the file's last line is not an audit line")
    return Resume(seq=seq, prev=digest(last))


def _last_line(path: Path, size: int) -> bytes:
    """The file's last line, with its newline if it has one."""
    with path.open("rb") as f:
        start = size
        tail = b""
        while start > 0:
            start = max(0, start - TAIL_BYTES)
            f.seek(start)
            tail = f.read(size - start)
            if tail.rstrip(b"\n").count(b"\n") >= 1 or tail.count(b"\n") >= 2:
                break
        body = tail[:-1] if tail.endswith(b"\n") else tail
        cut = body.rfind(b"\n")
        return tail[cut + 1:] if cut >= 0 else tail


@dataclass(slots=True)
class Chain:
    """One chain of the files: where its first and last lines are (FILE:LINE), their seqs, how many lines, and how
    it begins: a chain start's reason, or that it continues one from before the files given."""

    begins: str
    first_seq: int
    last_seq: int
    ends: str
    lines: int = 1
    why: str = ""


@dataclass(slots=True)
class OlderRun:
    """Lines with no `prev` after chained ones, the first of seq 1: a federator before 0.15.0 wrote them (a
    rollback on the same file); not checked. FILE:LINE of the first and last, and how many."""

    begins: str
    ends: str
    lines: int = 1


@dataclass(slots=True)
class Verdict:
    """What `verify` found: lines read, the chains started (where and why), and the first break ("" none)."""

    lines: int = 0
    chained: int = 0  # lines with a `prev`
    unchained: int = 0  # lines of a federator before 0.15.0 (no `prev`), before the first chained line
    older: list[OlderRun] = field(default_factory=list)  # such lines after chained ones: a rollback's
    starts: list[str] = field(default_factory=list)
    continued: str = ""  # the first line continues a chain from before the files given
    first_seq: int | None = None
    last_seq: int | None = None
    last_digest: str = ""
    problem: str = ""
    chains: list[Chain] = field(default_factory=list)  # in file order: a chain start begins the next


def _lines(paths: Iterable[Path]) -> Iterator[tuple[str, int, bytes]]:
    for path in paths:
        with path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                yield str(path), number, raw


def verify(paths: Iterable[Path]) -> Verdict:
    """Check the chain over the lines of `paths` (oldest first) as one; OSError for a file that cannot be read."""
    out = Verdict()
    prev_raw: bytes | None = None
    prev_seq: int | None = None
    in_older = False  # the line before was one of an older release's run after chained lines
    for where, number, raw in _lines(paths):
        at = f"{where}:{number}"
        out.lines += 1
        if not raw.endswith(b"\n"):
            out.problem = f"{at}: the line is cut short (no newline): written partly, or cut"
            return out
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        seq = doc.get("seq") if isinstance(doc, dict) else None
        if not isinstance(doc, dict) or not isinstance(seq, int) or isinstance(seq, bool):
            if _is_torn_before_start(where, number):
                prev_raw, prev_seq = None, None  # said by the chain start that follows it
                continue
            out.problem = f"{at}: not an audit line (not JSON with a seq)"
            return out
        out.first_seq = seq if out.first_seq is None else out.first_seq
        out.last_seq, out.last_digest = seq, digest(raw)
        if not out.chains or doc.get("action") == CHAIN_START and "prev" in doc:
            obj = doc.get("object")
            why = ((obj.get("reason", "") if isinstance(obj, dict) else "") if doc.get("action") == CHAIN_START
                   else "continues a chain from before the files given" if "prev" in doc
                   else "lines of a federator before 0.15.0 (no prev) first")
            out.chains.append(Chain(begins=at, first_seq=seq, last_seq=seq, ends=at, why=str(why)))
        else:
            out.chains[-1].last_seq, out.chains[-1].ends = seq, at
            out.chains[-1].lines += 1
        if "prev" not in doc:
            if out.chained and older_run(out, at, seq, prev_seq, within=in_older):
                prev_raw, prev_seq, in_older = raw, seq, True
                continue
            if out.chained:
                out.problem = f"{at} (seq {seq}): has no prev, after chained lines: a line was edited or replaced"
                return out
            out.unchained += 1
            prev_raw, prev_seq = raw, seq
            continue
        out.chained += 1
        in_older = False
        if doc.get("action") == CHAIN_START:
            if doc["prev"] != "" or seq != 1:
                out.problem = f"{at}: a chain start with seq {seq} and prev {doc['prev']!r} (it must be 1 and '')"
                return out
            obj = doc.get("object")
            out.starts.append(f"{at}: {obj.get('reason', '') if isinstance(obj, dict) else ''}")
        elif prev_raw is None:
            if out.lines == 1:
                out.continued = f"{at} (seq {seq}) continues a chain from before the files given"
            else:
                out.problem = f"{at} (seq {seq}): follows a cut-short line but does not start a new chain"
                return out
        elif prev_seq is not None and seq != prev_seq + 1:
            what = "a line is missing before it" if seq > prev_seq + 1 else "a line was moved or repeated"
            out.problem = f"{at} (seq {seq}): follows seq {prev_seq}: {what}"
            return out
        elif doc["prev"] != digest(prev_raw):
            out.problem = (f"{at} (seq {seq}): its prev does not match the line before it (seq {prev_seq}): that "
                           "line was edited, or lines between them removed")
            return out
        prev_raw, prev_seq = raw, seq
    return out


def older_run(out: Verdict, at: str, seq: int, prev_seq: int | None, *, within: bool) -> bool:
    """Is a line with no `prev` after chained ones (at `at`, `seq`) one of an older release's run (added to
    `out.older`)? `within`: the line before it was. Its first line has seq 1 (each start of such a release counts
    from 1); the next, seq + 1, or 1 at its next start. Any other is an edit."""
    if within and prev_seq is not None and seq in (prev_seq + 1, 1):
        out.older[-1].ends = at
        out.older[-1].lines += 1
        return True
    if seq != 1:
        return False
    out.older.append(OlderRun(begins=at, ends=at))
    return True


def _is_torn_before_start(where: str, number: int) -> bool:
    """Is line `number` of `where` followed by a chain start saying the file's last line was cut short?"""
    with open(where, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if n == number + 1:
                try:
                    doc = json.loads(raw)
                except ValueError:
                    return False
                obj = doc.get("object") if isinstance(doc, dict) else None
                return bool(doc.get("action") == CHAIN_START and isinstance(obj, dict) and obj.get("torn"))
    return False


__all__ = ["CHAIN_START", "Chain", "OlderRun", "Resume", "Verdict", "digest", "older_run", "resume", "verify"]
