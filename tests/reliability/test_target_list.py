"""Agents given two federator replicas as one gRPC target list move on from one that does not answer.

HA QA F1: outside a cluster, agents reach the leader of two replicas through `--server ipv4:A,B`, and a frozen
leader (SIGSTOP: its kernel completes the TCP handshake, the process never answers) held each of their connects
for gRPC's 20 s wait for the HTTP/2 SETTINGS frame. A listening socket nobody accepts on is that frozen replica.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

from federator.agent.dialing import AGENT_CONNECT_TIMEOUT_MS
from federator.cli.get import list_clusters
from federator.local import LocalFederation

from support import eventually

pytestmark = pytest.mark.e2e
GRPC_DEFAULT_CONNECT_TIMEOUT = 20.0  # what gRPC waits for a connect's SETTINGS without the agent's option


@pytest.fixture
def frozen() -> Iterator[int]:
    """A port whose connects complete (the kernel's backlog) and then hear nothing, as a frozen process's do."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _at(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def test_an_agent_gives_up_a_frozen_address_after_its_connect_deadline(
        federation_factory: Callable[..., LocalFederation], frozen: int) -> None:
    fed = federation_factory(agents=(), tls=False)
    down = _free_port()  # the other replica, not serving (a standby, or a leader not yet started)
    fed.start_agent("a-1", server=f"ipv4:127.0.0.1:{frozen},127.0.0.1:{down}")
    log = fed.workdir / "agent-a-1.log"

    def timed_out() -> list[str]:
        return [line for line in (log.read_text() if log.exists() else "").splitlines()
                if "lost (" in line and "before receiving SETTINGS" in line]

    lines = eventually(lambda: len(timed_out()) >= 3 and timed_out(), timeout=90,
                       what="three connects to the frozen address given up")
    waits = [(_at(b) - _at(a)).total_seconds() for a, b in zip(lines, lines[1:], strict=False)]
    print(f"connects to the frozen address given up {', '.join(f'{w:.2f}' for w in waits)} s apart")
    # Each attempt waits the agent's deadline (plus a back-off under a second), never gRPC's 20 s.
    assert all(AGENT_CONNECT_TIMEOUT_MS / 1000 - 1 <= w < GRPC_DEFAULT_CONNECT_TIMEOUT - 5 for w in waits), lines


def test_an_agent_reaches_the_replica_that_answers_in_a_target_list(
        federation_factory: Callable[..., LocalFederation], frozen: int) -> None:
    """The documented way outside a cluster: both replicas' addresses, the frozen one first."""
    fed = federation_factory(agents=(), tls=False)
    fed.start_agent("a-1", server=f"ipv4:127.0.0.1:{frozen},{fed.grpc_target}")
    eventually(lambda: any(c["name"] == "a-1" and c["state"] == "Ready" for c in list_clusters(fed.client)),
               timeout=60, what="a-1 connected through the target list")
    assert re.search(r"connected to ipv4:127\.0\.0\.1:\d+,", (fed.workdir / "agent-a-1.log").read_text())
