"""`federator hold ARRAY_ID` and `release ARRAY_ID` of an array whose tasks have all ended, against a real
`federator serve` (cli/array_holds.py `ended_line`).

After cancel60, `federator cancel ARRAY_ID` of such an array says `all 3 of its tasks had ended: nothing to cancel`
and exits 0; hold and release said `held 0 of 3 tasks (passed over: 3 ended)`, which read as a hold tried and
failed. They now say it as cancel does, and exit 0: nothing to do is no failure (users.md, Exit status)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from federator.cli import main

JOB = """apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: sweep}
spec: {kind: training, resources: {cpu: "1"}}
"""


@pytest.fixture
def federator(tmp_path: Path) -> Iterator[list[str]]:
    """A real `federator serve` (plaintext on a loopback port it picks); the CLI flags to reach it."""
    ready = tmp_path / "ready.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "federator", "serve", "--insecure", "--db", str(tmp_path / "f.db"),
                             "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--ready-file", str(ready)],
                            stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60  # a guard against a hang, not a timed assertion
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert ready.exists(), "federator serve did not start"
        yield ["--server", json.loads(ready.read_text())["grpc"], "--insecure"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_hold_and_release_of_an_array_whose_tasks_all_ended_say_nothing_to_do(
        federator: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "sweep.yaml"
    job.write_text(JOB)
    code, out, _ = _cli(capsys, "submit", "-f", str(job), "--array", "0-2", *federator)
    assert code == 0
    array_id = out.split()[1]  # "array sweep-3f9a1c submitted: ..."
    assert _cli(capsys, "cancel", array_id, *federator)[0] == 0
    for action in ("hold", "release"):
        assert _cli(capsys, action, array_id, *federator) == (
            0, f"array {array_id}: all 3 of its tasks had ended: nothing to {action}\n", "")
    assert _cli(capsys, "cancel", array_id, *federator) == (
        0, f"array {array_id}: all 3 of its tasks had ended: nothing to cancel\n", "")
    code, _, err = _cli(capsys, "hold", "sweep-000000", *federator)  # no such array: still not found
    assert code == 3 and "no job with id or name 'sweep-000000'" in err
