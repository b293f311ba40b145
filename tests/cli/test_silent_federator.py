"""Every unary CLI call to a federator that never answers says `no answer from HOST:PORT in N s`, as submit does,
not a bare "Deadline Exceeded" that names neither the address nor the wait (outside QA F13). The federator here
is a loopback TCP listener that never speaks: the kernel completes the connection and nothing more happens."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Iterator

import grpc
import pytest

from federator.cli import calls, cordon, main, usage
from federator.cli.no_leader import NOTE


@pytest.fixture
def silent() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("call", [["get", "jobs"], ["get", "clusters"], ["get", "job", "j"], ["cancel", "j"],
                                  ["scale", "j", "--replicas", "2"], ["cordon", "c-1"], ["uncordon", "c-1"],
                                  ["usage"]], ids=" ".join)
def test_a_call_to_a_federator_that_never_answers_names_the_address_and_the_wait(
        silent: str, call: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(calls, "CALL_TIMEOUT", 0.5)
    monkeypatch.setattr(cordon, "CALL_TIMEOUT", 0.5)
    monkeypatch.setattr(usage, "USAGE_TIMEOUT", 0.5)
    assert main([*call, "--insecure", "--server", silent]) == 4  # no answer: retry later (cli/exit_codes.py)
    err = capsys.readouterr().err
    first, note = err.splitlines()
    assert first == f"error: no answer from {silent} in 0.5 s (last: Deadline Exceeded)"
    assert note == NOTE.format(server=silent)  # a frozen leader answers nothing either (HA QA F3)


def test_a_deadline_the_federator_itself_sends_is_shown_as_it_said_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Only the client's own deadline is "no answer": a DEADLINE_EXCEEDED status with the federator's words (a
    Hello it waited for, say) keeps them."""

    class Said(Exception):
        def code(self) -> object:
            return grpc.StatusCode.DEADLINE_EXCEEDED

        def details(self) -> str:
            return "hello: no Hello within 10s of opening the stream"

    assert calls.fail(Said(), argparse.Namespace(server="f:7070")) == 4  # type: ignore[arg-type]
    assert capsys.readouterr().err == ("error: hello: no Hello within 10s of opening the stream "
                                       "(DEADLINE_EXCEEDED)\n")
