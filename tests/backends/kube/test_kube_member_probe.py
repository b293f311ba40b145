"""The Kubernetes backend's probe of its member's API server (KubeBackend.probe_member; QA F5), against a fake API
server on a real socket: one that answers, one that refuses us (still an answer), one that is not ready, and one
that accepts the connection and never answers (a SIGSTOPped kube-apiserver), which the probe gives up on within
its short timeout instead of the 30 s of an ordinary call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from federator.backends.kube import backend as kube_backend
from federator.backends.kube.api import KubeApi
from federator.backends.kube.backend import KubeBackend

ANSWERS = {"ok": (200, b"ok"), "forbidden": (403, b'{"kind":"Status","message":"forbidden","reason":"Forbidden"}'),
           "not-ready": (500, b"[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed")}


class FakeApiServer(BaseHTTPRequestHandler):
    mode = "ok"
    release = threading.Event()
    frozen_gets = 0

    def do_GET(self) -> None:  # noqa: N802
        if self.mode == "frozen":
            type(self).frozen_gets += 1
            self.release.wait(10)  # the connection is taken, the answer never comes
            return
        status, body = ANSWERS[self.mode]
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if body.startswith(b"{") else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeApi]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApiServer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: m, cluster: {{server: "http://127.0.0.1:{server.server_address[1]}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: m, context: {{cluster: m, user: u}}}}]
current-context: m
""")
    yield KubeApi.connect(kubeconfig)
    FakeApiServer.release.set()
    server.shutdown()
    FakeApiServer.release.clear()


@pytest.mark.parametrize(("mode", "problem"), [
    ("ok", None),
    ("forbidden", None),  # RBAC said no: the server answers
    ("not-ready", "GET /readyz: HTTP 500 : [+]ping ok [-]etcd failed: reason withheld readyz check failed"),
], ids=["answers", "forbidden-still-answers", "not-ready"])
def test_the_probe_says_what_the_api_server_answered(api: KubeApi, monkeypatch: pytest.MonkeyPatch, mode: str,
                                                     problem: str | None) -> None:
    monkeypatch.setattr(FakeApiServer, "mode", mode)
    assert asyncio.run(KubeBackend(api, namespace="w").probe_member()) == problem


def test_a_frozen_api_server_fails_the_probe_within_its_timeout(api: KubeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeApiServer, "mode", "frozen")
    monkeypatch.setattr(kube_backend, "PROBE_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(FakeApiServer, "frozen_gets", 0)
    problem = asyncio.run(KubeBackend(api, namespace="w").probe_member())
    assert FakeApiServer.frozen_gets == 1  # one try: not the pool's four (counted, not timed: CI's load varies)
    assert problem is not None and problem.startswith("GET /readyz: ") and "timed out" in problem, problem
