"""The federator's metrics port: /metrics for Prometheus, /healthz for the kubelet's probes.

- `/metrics` (and any other path, as prometheus_client's server had it): the registry, behind the
  `--metrics-token-file` token when one is set (security/metrics_token.py).
- `/healthz`: 200 when a scrape would succeed, else 503, and never the metrics. It runs the same collection a
  scrape does and drops the body, so a liveness probe still notices an event loop too stuck to be sampled
  (state_metrics.py `StateCollector` waits on it), as its scrape of /metrics did before the token, but tells an
  unauthenticated caller nothing.

- `/readyz`: 200 while this federator serves gRPC (`serving`: set once it serves, cleared as it stops) and
  /healthz would answer 200, else 503 and why; the chart's readiness probe, with or without TLS. A standby waiting
  for the Lease is not ready (it serves no gRPC: agents and clients reach only the leader through the Service), and
  neither is a frozen leader (SIGSTOP, a paused VM): its kernel still completes TCP handshakes, so the TCP probe
  the chart used with TLS kept it Ready beside the new leader (outside QA kubedr K6), but nothing answers here.

A standby replica waiting for the Lease serves /metrics and /healthz: it is alive, and Prometheus sees it
(`federator_leader` 0).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app

from federator.http_endpoint import HttpEndpoint, StartResponse
from federator.security.metrics_token import MetricsToken

log = logging.getLogger("federator.server")

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Served without the token: the probes this endpoint answers itself. Any other path is the registry's."""
HEALTH_REUSE_SECONDS = 1.0
"""A /healthz answer is reused this long: anyone who reaches the port may ask it, with no token, and each fresh
answer is a whole collection that waits on the event loop (0.7.0 review); the kubelet asks every few seconds."""


class MetricsEndpoint(HttpEndpoint):
    """Serves the federator's registry on `listen` until `stop()`; with a `token`, /metrics only to a scrape that
    sends it (security/metrics_token.py); /healthz never needs it."""

    def __init__(self, registry: CollectorRegistry, listen: str, *, token: MetricsToken | None = None) -> None:
        self._registry = registry
        self._metrics_app = make_wsgi_app(registry)
        self._health_lock = threading.Lock()
        self._health: tuple[float, str] | None = None  # (when, "" if alive else why not), reused a while
        self.serving = False  # /readyz: this federator serves gRPC (server/app.py sets it, and clears it to stop)
        super().__init__(self._app, listen, token=token, open_paths=OPEN_PATHS, name="metrics")

    def _alive(self) -> str:
        """"" when a scrape would succeed now, else why not: one collection at a time, its answer reused for
        HEALTH_REUSE_SECONDS."""
        with self._health_lock:
            now = time.monotonic()
            if self._health is not None and now - self._health[0] < HEALTH_REUSE_SECONDS:
                return self._health[1]
            try:
                generate_latest(self._registry)
                why = ""
            except Exception as exc:  # noqa: BLE001 - a sample that timed out or failed: not alive, and why
                log.warning("/healthz: collecting the metrics failed: %s", exc)
                why = f"collecting the metrics failed: {type(exc).__name__}"
            self._health = (time.monotonic(), why)
            return why

    def _ready(self) -> str:
        """"" when this federator serves gRPC and is alive, else why not."""
        if not self.serving:
            return "not serving gRPC: a standby waiting for the Lease, starting, or stopping"
        return self._alive()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in OPEN_PATHS:
            why = self._alive() if path == "/healthz" else self._ready()
            if why:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [f"{why}\n".encode()]
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"alive\n" if path == "/healthz" else b"serving\n"]
        return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]


__all__ = ["MetricsEndpoint"]
