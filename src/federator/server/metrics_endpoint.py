"""The federator's metrics port: /metrics for Prometheus, /healthz for the kubelet's probes.

- `/metrics` (and any other path, as prometheus_client's server had it): the registry, behind the
  `--metrics-token-file` token when one is set (security/metrics_token.py).
- `/healthz`: 200 when a scrape would succeed, else 503, and never the metrics. It runs the same collection a
  scrape does and drops the body, so a liveness probe still notices an event loop too stuck to be sampled
  (metrics.py `StateCollector` waits on it), as its scrape of /metrics did before the token, but tells an
  unauthenticated caller nothing.

A standby replica waiting for the Lease serves both: it is alive, and Prometheus sees it (`federator_leader` 0).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app

from federator.http_endpoint import HttpEndpoint, StartResponse
from federator.security.metrics_token import MetricsToken, guarded

log = logging.getLogger("federator.server")


class MetricsEndpoint:
    """Serves the federator's registry on `listen` until `stop()`."""

    def __init__(self, registry: CollectorRegistry, listen: str, *, token: MetricsToken | None = None) -> None:
        self._registry = registry
        self._metrics_app = make_wsgi_app(registry)
        self._http = HttpEndpoint(guarded(self._app, token), listen, name="metrics")
        self.host = self._http.host
        self.port = self._http.port

    @property
    def url(self) -> str:
        return self._http.url

    def stop(self) -> None:
        self._http.stop()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == "/healthz":
            try:
                generate_latest(self._registry)
            except Exception as exc:  # noqa: BLE001 - a sample that timed out or failed: not alive, and why
                log.warning("/healthz: collecting the metrics failed: %s", exc)
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [f"collecting the metrics failed: {type(exc).__name__}\n".encode()]
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"alive\n"]
        return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]


__all__ = ["MetricsEndpoint"]
