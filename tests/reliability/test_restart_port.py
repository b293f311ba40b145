"""A federator restarted on its port: a port held for a moment is waited out (a busy one is a clear error:
tests/cli/test_addresses.py).

CI once saw a restarted server exit with a traceback: its port, which the kernel had
handed out from the ephemeral range, was taken while no one listened on it.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path

import pytest

from federator.cli.get import list_jobs
from federator.local import LocalFederation, _ephemeral_ports, free_listen_port

from support import EXAMPLES

pytestmark = pytest.mark.e2e


def _hold(port: int) -> socket.socket:
    """A socket bound to the port and not listening, as a connection's local end holds it."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", port))
    return held


def test_a_local_federation_listens_outside_the_ephemeral_range() -> None:
    ephemeral = _ephemeral_ports()
    ports = [free_listen_port(rng=random.Random(seed)) for seed in range(20)]
    assert all(p not in ephemeral and p >= 10000 for p in ports), ports
    for port in ports:  # each was free when chosen
        _hold(port).close()


def test_a_restart_waits_out_a_port_held_for_a_moment(tmp_path: Path) -> None:
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml")
    try:
        fed.start_server()
        port = int(fed.grpc_target.rsplit(":", 1)[1])
        assert port not in _ephemeral_ports()
        assert fed.server is not None
        fed.server.kill()
        log = tmp_path / "fed" / "federator.log"
        refused_before = log.read_text().count("--listen: cannot bind")
        held = _hold(port)

        def release_once_refused() -> None:  # however slow the machine: the restart has met the held port
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and log.read_text().count("--listen: cannot bind") == refused_before:
                time.sleep(0.05)
            held.close()

        threading.Thread(target=release_once_refused, daemon=True).start()
        fed.start_server()
        assert fed.grpc_target == f"127.0.0.1:{port}"
        assert list_jobs(fed.client) == []
        assert log.read_text().count("--listen: cannot bind") > refused_before
    finally:
        fed.stop()


def test_a_first_start_whose_chosen_port_is_taken_meanwhile_takes_another(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import federator.local as local

    taken = _hold(free_listen_port())
    taken.listen()
    picks = [taken.getsockname()[1]]
    monkeypatch.setattr(local, "free_listen_port", lambda host: picks.pop() if picks else free_listen_port(host))
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml")
    try:
        fed.start_server()
        assert not picks  # the taken port was tried first
        assert fed.grpc_target != f"127.0.0.1:{taken.getsockname()[1]}"
        assert list_jobs(fed.client) == []
    finally:
        fed.stop()
        taken.close()
