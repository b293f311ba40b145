"""/readyz, the chart's readiness probe (with or without TLS): ready only while the federator serves gRPC and its
loop answers, over real HTTP on loopback and a real `federator serve` process.

Outside QA (kubedr K6): with TLS the chart probed readiness with a TCP connect to the gRPC port, which a frozen
leader (SIGSTOP, a paused VM or cgroup) passes, the kernel completing handshakes into its listen backlog: after the
standby took over, the Service kept the frozen pod as a second endpoint and agents' reconnects landed on it. A
standby serves no gRPC and must not be Ready either (agents and clients reach only the leader through the Service).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from federator.security.metrics_token import MetricsToken
from federator.server.metrics_endpoint import MetricsEndpoint

PROBE_TIMEOUT = 3.0  # the chart's probes.readiness.timeoutSeconds


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_readyz_is_ready_only_while_serving_and_open_without_the_metrics_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    ep = MetricsEndpoint(CollectorRegistry(), "127.0.0.1:0", token=MetricsToken.load(token))
    try:
        code, body = get(f"{ep.url}/readyz")  # a standby waiting for the Lease, or a federator still starting
        assert (code, body) == (503, "not serving gRPC: a standby waiting for the Lease, starting, or stopping\n")
        assert get(f"{ep.url}/healthz")[0] == 200  # alive all the same: the liveness probe does not restart it
        ep.serving = True
        assert get(f"{ep.url}/readyz") == (200, "serving\n")
        assert get(f"{ep.url}/metrics")[0] == 401  # the probe opens nothing else
        ep.serving = False  # stopping: out of the Service while it drains
        assert get(f"{ep.url}/readyz")[0] == 503
    finally:
        ep.stop()


def test_a_frozen_federator_fails_readyz_though_its_grpc_port_still_takes_a_connect(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "federator", "serve", "--insecure", "--db", str(tmp_path / "f.db"),
                             "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--ready-file", str(ready)],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        said = json.loads(ready.read_text())
        readyz = said["metrics"].removesuffix("/metrics") + "/readyz"
        assert get(readyz) == (200, "serving\n")
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            host, _, port = said["grpc"].rpartition(":")
            with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT):
                pass  # what the chart's TCP probe checked: it passes on a frozen process
            with pytest.raises(OSError):  # the probe's timeout: no answer, not Ready
                get(readyz)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert get(readyz) == (200, "serving\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
