"""A bearer token that guards /metrics: `--metrics-token-file`, on `federator serve` and `federator agent`.

Why: /metrics was open to anyone who could reach the port, and what it says is tenant data: queue names (a
thousand organisations' own), job counts and usage per queue, which providers and clusters exist and how full
they are. A NetworkPolicy (the chart's `networkPolicy.metricsFrom`) narrows who can reach it, where the network
plugin enforces one; a token is asked of every scrape, whatever the network.

Why a bearer token and not client certificates on the metrics port: it is what every Prometheus set-up can send
with nothing but a file or a Secret (`authorization: {credentials_file: ...}` in a scrape config, `authorization:
{credentials: <Secret key>}` in a ServiceMonitor or PodMonitor), the same file serves the federator and each
agent, and rotating it is writing the file. Client certificates would need a CA that Prometheus's certificate
chains to on every member cluster's agent, the federation's or another, and the kubelet's probes cannot present
one. The token travels in plain HTTP, like the metrics themselves: keep the port off untrusted networks (the
chart serves it on a ClusterIP Service of its own) or put a TLS proxy in front.

The file is re-read when it changes (its inode, size or mtime: the kubelet swaps a Secret volume's files by
renaming a directory), at the next request, so a rotated token needs no restart. A file that goes missing or
empty while running keeps the last token (logged once): a half-done swap must not open the endpoint, nor
refuse Prometheus for good.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("federator.security")

FLAG = "--metrics-token-file"
PROBES = frozenset({"/healthz", "/readyz"})
"""The most an endpoint may serve without the token: the kubelet's probes, which cannot send one. Each endpoint
names the ones it answers itself (`guarded`'s `open_paths`): a path open here but not answered there fell through
to the registry, and the federator's /readyz served every metric to anyone (0.7.0 review)."""

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class MetricsTokenError(ValueError):
    """The token file cannot be read, or holds no token."""


def _read(path: Path) -> bytes:
    try:
        token = path.read_bytes().strip()
    except OSError as exc:
        raise MetricsTokenError(f"{FLAG}: cannot read {path}: {exc.strerror or exc}") from exc
    if not token:
        raise MetricsTokenError(f"{FLAG}: {path} is empty: write the token Prometheus sends (one line)")
    if any(c < 0x21 or c > 0x7e for c in token):  # what an HTTP header can carry, and Prometheus sends, unchanged
        raise MetricsTokenError(f"{FLAG}: {path}: the token must be one line of printable ASCII with no spaces")
    return token


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class MetricsToken:
    """The token in a file, read at start (`load`: a missing or empty file is an error naming the flag) and again
    whenever the file changes. Called from the HTTP server's threads, hence the lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = _stamp(path)
        self._token = _read(path)
        self._said = ""
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path | None) -> MetricsToken | None:
        """None without a file: /metrics is open, as before the flag existed."""
        return cls(path) if path is not None else None

    def current(self) -> bytes:
        """The token to compare with: the file's, re-read if it changed since last read; the last good one if the
        file is now missing, empty or unreadable."""
        stamp = _stamp(self.path)
        with self._lock:
            if stamp is not None and stamp == self._stamp:
                return self._token
            try:
                self._token = _read(self.path)
            except MetricsTokenError as exc:
                if str(exc) != self._said:
                    log.warning("%s; keeping the last token read", exc)
                    self._said = str(exc)
                return self._token
            self._stamp, self._said = stamp, ""
            return self._token

    def admits(self, authorization: str) -> bool:
        """Whether an Authorization header carries this token as `Bearer <token>` (compared in constant time)."""
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("latin-1", "replace"), self.current())


def guarded(app: WsgiApp, token: MetricsToken | None, *, open_paths: frozenset[str]) -> WsgiApp:
    """`app` behind the token: no Authorization header is 401 (with the WWW-Authenticate challenge), a wrong one
    403; `open_paths` pass, and must be probes `app` answers itself, never with the metrics (a subset of PROBES).
    Without a token, `app` itself."""
    if not open_paths <= PROBES:
        raise ValueError(f"open paths {sorted(open_paths - PROBES)} are not probes: only {sorted(PROBES)} may be")
    if token is None:
        return app

    def guard(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in open_paths:
            return app(environ, start_response)
        given = environ.get("HTTP_AUTHORIZATION", "")
        if not given:
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", 'Bearer realm="metrics"')])
            return [f"a bearer token is required ({FLAG} is set)\n".encode()]
        if not token.admits(given):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"the bearer token is not the one this endpoint takes\n"]
        return app(environ, start_response)

    return guard


__all__ = ["FLAG", "PROBES", "MetricsToken", "MetricsTokenError", "guarded"]
