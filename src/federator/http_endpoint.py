"""A small threaded HTTP server for a WSGI app: the federator's and the agent's /metrics endpoints.

Why one of our own rather than prometheus_client's `start_http_server`: that one serves the registry on every
path and nothing else, with no way to ask a scrape for a token (security/metrics_token.py) or to answer the
kubelet's probes on a path of their own. Each request runs on a thread of its own, so a slow scrape never holds
up a probe, and no request waits on the caller's event loop unless the app does.

The endpoints themselves (server/metrics_endpoint.py, agent/endpoint.py) are only their WSGI apps: this serves
one behind the metrics token (`--metrics-token-file`, security/metrics_token.py `guarded`), with the probe paths
the app answers itself left open, so the listening, the token and the stopping are written once.
"""

from __future__ import annotations

import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from federator.listen import ListenError, parse_listen
from federator.security.metrics_token import MetricsToken, StartResponse, WsgiApp, guarded


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Probes and scrapes every few seconds would flood the log."""


class HttpEndpoint:
    """Serves `app` on `listen` (HOST:PORT, port 0 picks a free one) until `stop()`; with a `token`, only to a
    caller that sends it, but for `open_paths`: the probes `app` answers itself, never with the metrics
    (`guarded`). `flag` names the listen address in a bind error."""

    def __init__(self, app: WsgiApp, listen: str, *, token: MetricsToken | None = None,
                 open_paths: frozenset[str] = frozenset(), flag: str = "--metrics-listen",
                 name: str = "metrics") -> None:
        host, port = parse_listen(listen, flag)
        served = guarded(app, token, open_paths=open_paths)
        try:
            self._httpd = make_server(host, port, served, _Server6 if ":" in host else _Server,
                                      handler_class=_QuietHandler)
        except OSError as exc:
            raise ListenError(f"{flag}: cannot bind {listen}: {exc.strerror or exc}") from exc
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL: add a path."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


__all__ = ["HttpEndpoint", "ListenError", "StartResponse", "WsgiApp"]
