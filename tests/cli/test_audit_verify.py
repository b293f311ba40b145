"""`federator audit verify FILE...` (cli/audit.py): an auditor's check of the audit log's hash chain, naming the
first line that breaks it (outside compliance QA C4)."""

from __future__ import annotations

from pathlib import Path

from federator.security.audit import AuditLog

from support import federator_cli


def _log(path: Path, lines: int) -> None:
    audit = AuditLog(path)
    for n in range(lines):
        audit.record("submit", identity=None, obj={"kind": "Job", "name": f"j{n}"}, result="accepted")
    audit.close()


def test_an_intact_log_passes_and_says_what_it_checked(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 3)
    out = federator_cli("audit", "verify", str(path))
    assert out.returncode == 0, out.stderr
    said = out.stdout.splitlines()
    assert said[0] == f"{path}: 4 lines, seq 1 to 4: the chain holds"
    assert said[1] == f"  a chain starts at {path}:1: a new file"
    assert said[2].startswith("  the last line's hash: ") and len(said[2].split()[4]) == 64


def test_several_chains_are_each_said_with_their_own_seq_range(tmp_path: Path) -> None:
    """QA new56 N5: a log moved aside and a new file begun (the federator restarted on a new --audit-log) are two
    chains: the headline says so, and each chain its seq range, not the last one's for the lines of both."""
    old, new = tmp_path / "audit.log.1", tmp_path / "audit.log"
    _log(old, 7)
    _log(new, 2)
    out = federator_cli("audit", "verify", str(old), str(new))
    assert out.returncode == 0, out.stderr
    said = out.stdout.splitlines()
    assert said[0] == f"{old}, {new}: 11 lines in 2 chains: each holds"
    assert said[1] == f"  chain 1: seq 1 to 8 (8 lines), {old}:1 to {old}:8; it begins: a new file"
    assert said[2] == f"  chain 2: seq 1 to 3 (3 lines), {new}:1 to {new}:3; it begins: a new file"
    assert said[3].startswith("  the last line's hash: ") and len(said) == 4


def test_a_deleted_line_fails_naming_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 3)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1] + lines[2:]))
    out = federator_cli("audit", "verify", str(path))
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr.strip() == (f"federator audit verify: the chain is broken at {path}:2 (seq 3): follows seq 1: "
                                  "a line is missing before it")


def test_an_unreadable_file_is_exit_2_naming_it(tmp_path: Path) -> None:
    out = federator_cli("audit", "verify", str(tmp_path / "nope.jsonl"))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"federator audit verify: {tmp_path / 'nope.jsonl'}: cannot read it: No such file "
                                  "or directory")


def test_lines_of_a_rollback_to_a_federator_before_0_15_are_exit_3_named_not_tampering(tmp_path: Path) -> None:
    """Outside upgrade QA U4: after the documented rollback to 0.14.0 on the same --audit-log, verify said "a line
    was edited or replaced" (exit 1) for as long as the file was kept."""
    path = tmp_path / "audit.jsonl"
    _log(path, 2)  # 0.15.0 or later: a chain start and two lines
    path.write_text(path.read_text() + '{"time":"t","seq":1,"action":"release","identity":null,"object":{},'
                    '"result":"accepted","code":"OK","rule":"","message":""}\n')  # 0.14.0's first line
    out = federator_cli("audit", "verify", str(path))
    assert out.returncode == 3, out.stderr
    assert out.stdout.splitlines()[0] == f"{path}: 4 lines: the chain holds over its 3 chained lines"
    assert f"  1 lines at {path}:4 to {path}:4 have no prev, after chained lines, from seq 1: written by a " \
           "federator before 0.15.0 (a rollback to it on this file?): not checked" in out.stdout.splitlines()
    assert "edited or replaced" not in out.stderr and "(exit 3)" in out.stderr
