"""`federator submit` against a federator: each job printed as it is accepted, a refusal naming the file and
document and saying what was and was not submitted, a federator that never answers given up on in time, a job
too big to send refused before anything is sent; `federator watch` across a federator restart (real processes)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from test_jobfile import GOOD  # type: ignore[import-not-found]

from federator.cli.get import list_jobs
from federator.local import LocalFederation

from support import eventually, federator_cli


def _doc(name: str, **spec: object) -> str:
    d = json.loads(json.dumps(GOOD))
    d["metadata"] = {"name": name}
    d["spec"] = {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}, **spec}
    return json.dumps(d)


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[LocalFederation]:
    f = LocalFederation(workdir=tmp_path / "fed", tls=False)
    f.start_server()
    try:
        yield f
    finally:
        f.stop()


def test_a_refused_document_is_named_with_its_file_and_what_was_submitted_is_said(
        fed: LocalFederation, tmp_path: Path) -> None:
    path = tmp_path / "three.yaml"
    bad = _doc("part-b", resources={"nvidia.com/gpu": 8}, acceleratorModels=["H1OO"])
    path.write_text("\n---\n".join([_doc("part-a"), bad, _doc("part-c")]))
    out = federator_cli("submit", "-f", str(path), *fed.client_args())
    assert out.returncode == 1
    (accepted,) = out.stdout.splitlines()
    assert accepted.startswith("job part-a-") and "submitted (default/part-a" in accepted
    err = out.stderr.splitlines()
    assert err[0].startswith(f"error: {path}: document 2 (part-b): ") and "H1OO" in err[0], err
    assert err[1].startswith("error: 1 of 3 jobs submitted (those before it); 1 after it not submitted."), err
    # fixed and submitted again: part-a is the same job, not a second one
    path.write_text("\n---\n".join([_doc("part-a"), _doc("part-b"), _doc("part-c")]))
    again = federator_cli("submit", "-f", str(path), *fed.client_args())
    assert again.returncode == 0, again.stderr
    assert [line.split(" ")[2] for line in again.stdout.splitlines()] == ["unchanged", "submitted", "submitted"]


def test_a_refusal_of_a_one_job_file_names_the_file(fed: LocalFederation, tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(_doc("solo", resources={"nvidia.com/gpu": 8}, acceleratorModels=["H1OO"]))
    out = federator_cli("submit", "-f", str(path), *fed.client_args())
    assert out.returncode == 1
    assert out.stderr.startswith(f"error: {path}: spec.acceleratorModels[0]"), out.stderr


def test_each_job_is_printed_as_it_is_accepted(fed: LocalFederation, tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("\n---\n".join(_doc(f"j-{i}") for i in range(1000)))
    proc = subprocess.Popen([sys.executable, "-m", "federator", "submit", "-f", str(path), *fed.client_args()],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("job j-0-"), first
        assert len(list_jobs(fed.client)) < 1000, "the first line came only when every job was in"
    finally:
        proc.kill()
        proc.wait()


def test_a_federator_that_never_answers_is_given_up_on_after_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(_doc("quiet"))
    with socket.socket() as s:  # accepts TCP (the backlog), never speaks
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        addr = f"127.0.0.1:{s.getsockname()[1]}"
        # Not timed (a loaded machine took 8 s to start the CLI's process): the words name the 2 s given, and a
        # CLI that hung on would meet federator_cli's own limit and fail here.
        out = federator_cli("submit", "-f", str(path), "--insecure", "--server", addr, "--timeout", "2", timeout=45)
    assert out.returncode == 4  # no answer: retry later (cli/exit_codes.py)
    assert f"error: {path}: no answer from {addr} in 2 s" in out.stderr, out.stderr


def test_a_job_too_big_to_send_is_refused_naming_its_document_before_anything_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    big = json.loads(_doc("big"))
    big["spec"]["template"] = {"spec": {"containers": [{"name": "main", "image": "trainer",
                                                       "args": ["x" * 1000] * 1500}]}}
    path.write_text(_doc("small") + "\n---\n" + json.dumps(big))
    out = federator_cli("submit", "-f", str(path), "--insecure", "--server", "127.0.0.1:1")
    assert out.returncode == 2  # nothing dialled: port 1 would have been exit 1
    assert out.stderr.startswith(f"error: {path}: document 2 (big): the job comes to "), out.stderr
    assert "more than 1048576 (1 MiB)" in out.stderr and "nothing submitted" in out.stderr


def test_a_job_over_the_default_limit_is_sent_to_a_federator_whose_operator_raised_it(tmp_path: Path) -> None:
    """The CLI held every job to the default --max-message-bytes, so a federator run with a larger one could
    never be sent a job between the two; --max-request-bytes says what the federator takes."""
    fed = LocalFederation(workdir=tmp_path / "fed", tls=False, serve_args=["--max-message-bytes", str(4 << 20)])
    fed.start_server()
    try:
        path = tmp_path / "big.yaml"
        big = json.loads(_doc("big"))
        big["spec"]["template"] = {"spec": {"containers": [{"name": "main", "image": "trainer",
                                                           "args": ["x" * 1000] * 1500}]}}
        path.write_text(json.dumps(big))
        held = federator_cli("submit", "-f", str(path), *fed.client_args())
        assert held.returncode == 2 and "say so with --max-request-bytes" in held.stderr, held.stderr
        sent = federator_cli("submit", "-f", str(path), "--max-request-bytes", str(4 << 20), *fed.client_args())
        assert sent.returncode == 0, sent.stderr
        assert [j.spec.name for j in list_jobs(fed.client)] == ["big"]
    finally:
        fed.stop()


def test_watch_outlives_a_federator_restart_and_gives_up_on_one_that_stays_away(
        fed: LocalFederation, tmp_path: Path) -> None:
    """The watch is known to be up when it has printed the job there is, not after a fixed sleep (a loaded machine
    took longer than 1.5 s to start it, and a watch killed before its first stream is a plain connect error); the
    reconnect window is wider than a restart takes there (6 s under a load of 10 on 2 CPUs): what this checks is
    the reconnect and the give-up, not how fast."""
    assert fed.server is not None
    path = tmp_path / "one.json"
    path.write_text(_doc("seen"))
    assert federator_cli("submit", "-f", str(path), *fed.client_args()).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "federator", "watch", *fed.client_args(), "--reconnect-for", "15"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(proc.stdout.readline() if proc.stdout else ""),
                                  daemon=True)
        reader.start()
        reader.join(60)
        assert first and "seen" in first[0], (first, proc.poll())
        fed.server.kill()
        fed.start_server()
        eventually(lambda: proc.poll() is None and fed.server is not None and fed.server.alive(), timeout=10)
        time.sleep(3)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        fed.server.kill()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 4  # the federator went away: retry later
    lines = err.splitlines()
    assert lines[0].startswith(f"watch: lost the federator at {fed.grpc_target} ("), lines
    assert lines[1].startswith(f"watch: the federator at {fed.grpc_target} is back after "), lines
    assert lines[-1] == f"error: the federator at {fed.grpc_target} went away and did not come back in 15 s", lines


class _Refused(grpc.RpcError):
    def __init__(self, detail: str) -> None:
        self.detail = detail

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return self.detail


def test_a_federator_that_answers_unavailable_is_not_called_silent() -> None:
    """Outside operator QA: with the federator's disk full, each Submit was answered UNAVAILABLE ("job store:
    database or disk is full"), and the CLI said "no answer from ...", which sent them to the network."""
    from federator.cli.submit_calls import NoAnswer

    full = NoAnswer("fed:7070", 15, 8, _Refused("job store: database or disk is full; the job was not accepted"))
    assert str(full).startswith("fed:7070 answered UNAVAILABLE for 15 s (8 tries; last: job store: database")
    assert "nothing was stored" in str(full)
    gone = NoAnswer("fed:7070", 15, 8, _Refused("failed to connect to all addresses; last error: Connection refused"))
    assert str(gone).startswith("no answer from fed:7070 in 15 s")
