"""The agent's HTTP endpoint: /metrics for Prometheus, /healthz and /readyz for the kubelet.

- `/metrics`: the agent's metrics (`agent/metrics.py`), Prometheus text format.
- `/healthz`: 200 while the agent's event loop runs and is not stuck, else 503.
  A liveness probe on it restarts a wedged agent, not one that merely cannot
  reach the federator (restarting would not fix the network).
- `/readyz`: 200 only while the stream to the federator is up and has carried
  a capacity report from the backend, else 503. It is what a readiness probe
  and an SRE's `curl` ask: "is this cluster's side of the link working?". An
  agent refused its namespace (another federation's holds it) says so there.

It runs on threads of its own (like the federator's /metrics), so a scrape
never waits on the agent's event loop, and it reads only values the loop
refreshes (`AgentMetrics`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import make_wsgi_app

from federator.agent.metrics import AgentMetrics
from federator.http_endpoint import HttpEndpoint, StartResponse
from federator.listen import ListenError, parse_listen
from federator.security.metrics_token import PROBES, MetricsToken


class Endpoint(HttpEndpoint):
    """Serves one agent's /metrics, /healthz and /readyz until `stop()`; with a `token`, /metrics only to a
    scrape that sends it (security/metrics_token.py); the probes never need it."""

    def __init__(self, metrics: AgentMetrics, listen: str, *, token: MetricsToken | None = None) -> None:
        self._metrics = metrics
        self._metrics_app = make_wsgi_app(metrics.registry)
        super().__init__(self._app, listen, token=token, open_paths=PROBES, name="agent-endpoint")

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _probe(start_response, self._metrics.alive(), "alive", "the agent's event loop is not running")
        if path == "/readyz":
            return _probe(start_response, self._metrics.ready(), "ready", self._metrics.not_ready())
        if path in ("/metrics", "/"):
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]


def _probe(start_response: StartResponse, ok: bool, yes: str, no: str) -> list[bytes]:
    start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
    return [f"{yes if ok else no}\n".encode()]


__all__ = ["Endpoint", "ListenError", "parse_listen"]
