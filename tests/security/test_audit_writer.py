"""The audit log's writer (security/audit.py): lines numbered in the order recorded, from any thread, all in the
file once `close` returns; a new file is the owner's alone (outside compliance QA, C7), an existing one keeps the
mode its operator gave it."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

from federator.security.audit import AuditLog


def test_lines_recorded_from_many_threads_are_all_written_in_seq_order_by_close(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, background=True)

    def burst(n: int) -> None:
        for i in range(500):
            audit.record("place", identity=None, obj={"kind": "Placement", "job_id": f"j{n}-{i}"}, result="accepted")

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    audit.close()
    start, *lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert (start["action"], start["seq"], start["prev"]) == ("audit.chain-start", 1, "")  # a new file's chain
    assert [x["seq"] for x in lines] == list(range(2, 2002))
    assert len({x["object"]["job_id"] for x in lines}) == 2000
    audit.record("finish", identity=None, obj={"kind": "Job"}, result="accepted")  # after close: dropped, no error
    assert len(path.read_text().splitlines()) == 2001


def test_a_new_audit_file_is_created_0600_and_an_existing_one_keeps_its_mode(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        AuditLog(tmp_path / "new.jsonl").close()
        kept = tmp_path / "kept.jsonl"
        kept.write_text("")
        kept.chmod(0o640)  # the operator's choice (a log shipper in the file's group)
        AuditLog(kept).close()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "new.jsonl").stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
