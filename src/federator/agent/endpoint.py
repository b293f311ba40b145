"""The agent's HTTP endpoint: /metrics for Prometheus, /healthz and /readyz for the kubelet.

- `/metrics`: the agent's metrics (`agent/metrics.py`), Prometheus text format.
- `/healthz`: 200 while the agent's event loop runs and is not stuck, else 503.
  A liveness probe on it restarts a wedged agent, not one that merely cannot
  reach the federator (restarting would not fix the network).
- `/readyz`: 200 only while the stream to the federator is up and has carried
  a capacity report from the backend, else 503. It is what a readiness probe
  and an SRE's `curl` ask: "is this cluster's side of the link working?".

It runs on threads of its own (like the federator's /metrics), so a scrape
never waits on the agent's event loop, and it reads only values the loop
refreshes (`AgentMetrics`).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from federator.agent.metrics import AgentMetrics
from federator.listen import ListenError, parse_listen

StartResponse = Callable[..., Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Probes every few seconds would flood the agent's log."""


class Endpoint:
    """Serves one agent's /metrics, /healthz and /readyz until `stop()`."""

    def __init__(self, metrics: AgentMetrics, listen: str) -> None:
        host, port = parse_listen(listen)
        self._metrics = metrics
        self._metrics_app = make_wsgi_app(metrics.registry)
        try:
            self._httpd = make_server(host, port, self._app, _Server6 if ":" in host else _Server,
                                      handler_class=_QuietHandler)
        except OSError as exc:
            raise ListenError(f"--metrics-listen: cannot bind {listen}: {exc.strerror or exc}") from exc
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="agent-endpoint", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL: add /metrics, /healthz or /readyz."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _probe(start_response, self._metrics.alive(), "alive", "the agent's event loop is not running")
        if path == "/readyz":
            return _probe(start_response, self._metrics.ready(), "ready",
                          "not connected to the federator, or no capacity report sent on this stream yet")
        if path in ("/metrics", "/"):
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]


def _probe(start_response: StartResponse, ok: bool, yes: str, no: str) -> list[bytes]:
    start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
    return [f"{yes if ok else no}\n".encode()]


__all__ = ["Endpoint", "ListenError", "parse_listen"]
