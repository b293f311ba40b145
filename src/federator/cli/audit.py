"""`federator audit verify FILE...`: check an audit log's hash chain and name the first line that breaks it.

Why a command of the CLI (not a script in scripts/): the auditor who checks the log is not the operator who runs
the federator; the one tool they both install is `federator`. It reads files only (no federator, no certificates)
and checks them with security/audit_chain.py: oldest file first, as one chain (a file rotated by copytruncate is
continued by the next one).

Exit codes: 0 the chain holds (and what it says: lines, seq, chains started and why, the last line's hash to note
down; over several chains, each one's seq range, lines, first and last line, and how it begins); 1 a line breaks
it (named: file, line number, seq, what is wrong); 2 a file cannot be read; 3 the chain holds where it is checked,
but lines after chained ones have no `prev`, from seq 1: a federator before 0.15.0 wrote them (a rollback on the
same --audit-log, outside upgrade QA U4), and they are not checked (each run named). It was 1, "a line was edited
or replaced", which a SIEM job reads as tampering; a script that wants no unchecked lines treats 3 as a failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="check an audit log (--audit-log) for deleted or edited lines")
    asub = p.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    v = asub.add_parser("verify", help="check the hash chain of audit log files (each line's seq and prev) and "
                                       "name the first line that breaks it")
    v.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="audit log files, oldest first (a rotated file, then the one after it): checked as one chain")
    v.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from federator.security.audit_chain import verify

    try:
        found = verify(args.files)
    except OSError as exc:
        print(f"federator audit verify: {exc.filename or 'FILE'}: cannot read it: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    if found.problem:
        print(f"federator audit verify: the chain is broken at {found.problem}", file=sys.stderr)
        return 1
    if not found.lines:
        print("no lines: nothing to verify")
        return 0
    names = ", ".join(str(f) for f in args.files)
    if len(found.chains) > 1:  # one seq range would read as a contradiction of the line count: one per chain
        print(f"{names}: {found.lines} lines in {len(found.chains)} chains: each holds")
        for n, chain in enumerate(found.chains, start=1):
            print(f"  chain {n}: seq {chain.first_seq} to {chain.last_seq} ({chain.lines} lines), {chain.begins} to "
                  f"{chain.ends}; it begins: {chain.why}")
    elif found.older:  # its seq starts again at 1: a range would read as a contradiction of the line count
        print(f"{names}: {found.lines} lines: the chain holds over its {found.chained} chained lines")
    else:
        print(f"{names}: {found.lines} lines, seq {found.first_seq} to {found.last_seq}: the chain holds")
    if found.unchained:
        print(f"  {found.unchained} lines before the first chained one have no prev (written before 0.15.0): "
              "not checked")
    if found.continued:
        print(f"  {found.continued}: give the file before it too to check that link")
    if len(found.chains) <= 1:
        for start in found.starts:
            print(f"  a chain starts at {start}")
    print(f"  the last line's hash: {found.last_digest} (note it down: a later edit of the lines up to it shows)")
    for run in found.older:
        print(f"  {run.lines} lines at {run.begins} to {run.ends} have no prev, after chained lines, from seq 1: "
              "written by a federator before 0.15.0 (a rollback to it on this file?): not checked")
    if found.older:
        print(f"federator audit verify: {sum(r.lines for r in found.older)} lines after chained ones have no prev "
              "(a federator before 0.15.0 wrote them): not checked (exit 3)", file=sys.stderr)
        return 3
    return 0
