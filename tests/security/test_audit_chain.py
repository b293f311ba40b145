"""The audit log's hash chain (security/audit_chain.py): `prev` names the line before, `seq` goes on across restarts,
a file with no chain to continue starts one saying why, and `verify` names the first line that breaks it (outside
compliance QA C4: a deleted or edited line was undetectable, and `seq` began again at 1 at each start)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from federator.security.audit import AuditLog
from federator.security.audit_chain import CHAIN_START, verify


def run(path: Path, *names: str, background: bool = True) -> None:
    """A federator's run: its audit log opened, a submit line per name, closed (as at SIGTERM)."""
    audit = AuditLog(path, background=background)
    for name in names:
        audit.record("submit", identity=None, obj={"kind": "Job", "name": name}, result="accepted")
    audit.close()


def raw_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_each_line_names_the_hash_of_the_one_before_and_seq_goes_on_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    run(path, "a", "b")
    run(path, "c")  # a restart: the chain goes on from the file's last line
    raw = raw_lines(path)
    lines = [json.loads(x) for x in raw]
    assert [(x["action"], x["seq"]) for x in lines] == [
        (CHAIN_START, 1), ("submit", 2), ("submit", 3), ("submit", 4)]
    assert lines[0]["prev"] == "" and lines[0]["object"]["reason"] == "a new file"
    for before, line in zip(raw, lines[1:], strict=False):
        assert line["prev"] == hashlib.sha256(before.rstrip(b"\n")).hexdigest()
    found = verify([path])
    assert (found.problem, found.lines, found.first_seq, found.last_seq) == ("", 4, 1, 4)
    assert found.starts == [f"{path}:1: a new file"]
    assert found.last_digest == hashlib.sha256(raw[-1].rstrip(b"\n")).hexdigest()


def test_a_deleted_line_is_named_by_the_line_after_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    run(path, "a", "b", "c")
    raw = raw_lines(path)
    path.write_bytes(b"".join(raw[:2] + raw[3:]))  # seq 3 ("b") removed
    assert verify([path]).problem == f"{path}:3 (seq 4): follows seq 2: a line is missing before it"


def test_a_deleted_line_with_the_rest_renumbered_is_named_by_its_prev(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    run(path, "a", "b", "c")
    raw = raw_lines(path)
    last = json.loads(raw[3])
    last["seq"] = 3  # the gap hidden: the hash still names the line that is gone
    path.write_bytes(b"".join(raw[:2]) + json.dumps(last, separators=(",", ":")).encode() + b"\n")
    assert verify([path]).problem == (f"{path}:3 (seq 3): its prev does not match the line before it (seq 2): that "
                                      "line was edited, or lines between them removed")


def test_an_edited_line_is_named_by_the_line_after_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    run(path, "alice-job", "b")
    path.write_bytes(path.read_bytes().replace(b'"alice-job"', b'"other-job"'))
    assert verify([path]).problem.startswith(f"{path}:3 (seq 3): its prev does not match the line before it (seq 2)")


def test_a_line_that_is_not_an_audit_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    run(path, "a", "b")
    raw = raw_lines(path)
    path.write_bytes(raw[0] + b"garbage\n" + b"".join(raw[1:]))
    assert verify([path]).problem == f"{path}:2: not an audit line (not JSON with a seq)"


def test_an_empty_file_at_start_a_rotated_one_starts_a_new_chain_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    run(path, "a")
    rotated = tmp_path / "audit.jsonl.1"
    rotated.write_bytes(path.read_bytes())
    path.write_bytes(b"")  # copytruncate while the federator was down
    run(path, "b")
    lines = [json.loads(x) for x in raw_lines(path)]
    assert [(x["action"], x["seq"], x["prev"]) for x in lines][0] == (CHAIN_START, 1, "")
    assert lines[0]["object"]["reason"].startswith("an empty file")
    assert verify([path]).problem == ""
    assert verify([rotated, path]).starts == [f"{rotated}:1: a new file", f"{path}:1: {lines[0]['object']['reason']}"]


def test_a_file_rotated_while_the_federator_runs_goes_on_with_the_same_chain(tmp_path: Path) -> None:
    path, rotated = tmp_path / "audit.jsonl", tmp_path / "audit.jsonl.1"
    audit = AuditLog(path)
    audit.record("submit", identity=None, obj={"kind": "Job", "name": "a"}, result="accepted")
    rotated.write_bytes(path.read_bytes())  # copytruncate: copied, then the same file emptied
    with path.open("r+b") as f:
        f.truncate(0)
    audit.record("submit", identity=None, obj={"kind": "Job", "name": "b"}, result="accepted")
    audit.close()
    both = verify([rotated, path])
    assert (both.problem, both.lines, both.continued) == ("", 3, "")
    alone = verify([path])
    assert alone.problem == "" and alone.continued == f"{path}:1 (seq 3) continues a chain from before the files given"
    rotated.write_bytes(raw_lines(rotated)[0])  # the rotated file's last line lost: the link shows it
    assert verify([rotated, path]).problem == f"{path}:1 (seq 3): follows seq 1: a line is missing before it"


def test_a_torn_last_line_is_ended_and_a_new_chain_starts_which_verify_accepts(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    run(path, "a")
    path.write_bytes(path.read_bytes() + b'{"time":"2026-12-06T2')  # a crash while writing
    run(path, "b")
    lines = raw_lines(path)
    assert lines[2] == b'{"time":"2026-12-06T2\n'
    start = json.loads(lines[3])
    assert (start["action"], start["seq"], start["object"]["torn"]) == (CHAIN_START, 1, True)
    assert "cut short" in start["object"]["reason"]
    found = verify([path])
    assert found.problem == "" and len(found.starts) == 2


def test_lines_of_a_federator_before_the_chain_are_not_checked_and_the_chain_continues_after_them(
        tmp_path: Path) -> None:
    """An upgrade: 0.14.0's lines have a seq and no prev; 0.15.0 continues from the last of them."""
    path = tmp_path / "audit.jsonl"
    old = [{"time": "t", "seq": n, "action": "submit", "identity": None, "object": {}, "result": "accepted",
            "code": "OK", "rule": "", "message": ""} for n in (1, 2)]
    path.write_text("".join(json.dumps(x, separators=(",", ":")) + "\n" for x in old))
    run(path, "a")
    lines = [json.loads(x) for x in raw_lines(path)]
    assert [x["seq"] for x in lines] == [1, 2, 3] and lines[2]["action"] == "submit"
    found = verify([path])
    assert (found.problem, found.unchained, found.chained) == ("", 2, 1)
    edited = dict(old[0], seq=4)  # the chained line seq 3 would precede: its prev taken off
    path.write_text(path.read_text() + json.dumps(edited, separators=(",", ":")) + "\n")
    assert verify([path]).problem == (f"{path}:4 (seq 4): has no prev, after chained lines: a line was edited or "
                                      "replaced")


def _old_lines(*seqs: int) -> str:
    """Lines as a federator before 0.15.0 writes them: a seq counted from 1 at each start, no prev."""
    return "".join(json.dumps({"time": "t", "seq": n, "action": "release", "identity": None, "object": {},
                               "result": "accepted", "code": "OK", "rule": "", "message": ""},
                              separators=(",", ":")) + "\n" for n in seqs)


def test_a_rollback_to_a_federator_before_0_15_on_the_file_is_named_not_called_an_edit(tmp_path: Path) -> None:
    """Outside upgrade QA U4: 0.14.0 on the file after a chained run appends lines from seq 1 with no prev; verify
    called the first an edit. They are an older release's run, unchecked; the chain after them is checked."""
    path = tmp_path / "audit.jsonl"
    path.write_text(_old_lines(1, 2))  # 0.14.0
    run(path, "a")  # the upgrade: seq 3, chained
    path.write_text(path.read_text() + _old_lines(1, 2, 1))  # the rollback: 0.14.0 started twice
    found = verify([path])
    assert found.problem == ""
    assert [(r.begins, r.ends, r.lines) for r in found.older] == [(f"{path}:4", f"{path}:6", 3)]
    run(path, "b")  # upgraded again: continues from 0.14.0's last line
    lines = [json.loads(x) for x in raw_lines(path)]
    assert lines[-1]["seq"] == 2 and lines[-1]["prev"] == hashlib.sha256(raw_lines(path)[5].rstrip(b"\n")).hexdigest()
    assert verify([path]).problem == "" and len(verify([path]).older) == 1
    text = raw_lines(path)
    text[5] = text[5].replace(b'"release"', b'"cancel"')  # an older line edited: the chained line after it tells
    path.write_bytes(b"".join(text))
    assert verify([path]).problem.startswith(f"{path}:7 (seq 2): its prev does not match the line before it")


@pytest.mark.parametrize("background", [True, False], ids=["writer-thread", "caller"])
def test_many_lines_chain_whichever_thread_writes(tmp_path: Path, background: bool) -> None:
    path = tmp_path / "audit.jsonl"
    run(path, *(f"j{n}" for n in range(1500)), background=background)
    found = verify([path])
    assert (found.problem, found.lines, found.last_seq) == ("", 1501, 1501)
