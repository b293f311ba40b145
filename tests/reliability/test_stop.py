"""A federator stopped with SIGTERM (a rolling upgrade, a node drained) ends its streams itself, saying why.

Found by an outside check on the test bed: every stop logged, per connected agent and per watch, gRPC's
`ERROR ... Exception not handled ... AgentService/Connect` with a CancelledError traceback, because the
server's stop cut the streams the federator had left open. Now the agents hear UNAVAILABLE "the federator is
stopping" and reconnect; a watch ends the same way; the log has no traceback.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from federator.cli.get import list_clusters
from federator.local import LocalFederation

from support import EXAMPLES, eventually

pytestmark = pytest.mark.e2e


def test_a_stopping_federator_ends_agent_streams_and_watches_with_a_status(tmp_path: Path) -> None:
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml", tls=False)
    watch = None
    try:
        fed.start_server()
        fed.start_agent("east-1")
        eventually(lambda: [c["state"] for c in list_clusters(fed.client)] == ["Ready"], timeout=30,
                   what="east-1 Ready")
        watch_log = tmp_path / "watch.log"
        with watch_log.open("wb") as out:
            watch = subprocess.Popen([sys.executable, "-m", "federator", "watch", *fed.client_args()],
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        eventually(lambda: _watching(fed), timeout=15, what="the watch open")
        assert fed.server is not None
        fed.server.stop()  # SIGTERM
        assert fed.server.popen.returncode == 0
        log = fed.server.log.read_text()
        assert "Traceback" not in log and "Exception not handled" not in log, log
        assert "ending the stream of cluster east-1: UNAVAILABLE cluster east-1: the federator is stopping" in log
        eventually(lambda: "the federator is stopping" in fed.agents["east-1"].log.read_text(), timeout=15,
                   what="the agent told why its stream ended")
        eventually(lambda: "watch: the federator is stopping" in watch_log.read_text(), timeout=15,
                   what=lambda: f"the watch told why it ended: {watch_log.read_text()}")
    finally:
        if watch is not None:
            watch.kill()
            watch.wait()
        fed.stop()


def _watching(fed: LocalFederation) -> bool:
    """Whether the server counts a watch started (federator_grpc_server_started_total; `federator watch` reads
    WatchBatches since 0.18.0)."""
    with urllib.request.urlopen(fed.metrics_url, timeout=5) as r:  # noqa: S310 - loopback
        text = r.read().decode()
    return any(line.startswith("federator_grpc_server_started_total{") and 'grpc_method="WatchBatches"' in line
               and not line.endswith(" 0.0") for line in text.splitlines())
