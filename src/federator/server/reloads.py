"""The files a running federator re-reads: the provider trust file and its own TLS files.

Both are mounted Secrets in a cluster, swapped under the running process (a provider added or revoked; a
certificate cert-manager renewed), and no one sends it a SIGHUP. So they are polled together every
`--trust-poll-seconds`, and SIGHUP re-reads both at once. What came of each look is counted in the metrics
(`federator_trust_reload_total`, `federator_serving_certificate_reload_total`, and a gauge each while the file
on disk is refused); the certificate served says when it expires.
"""

from __future__ import annotations

import asyncio
import logging

from federator.metrics import Metrics
from federator.security.serving_reload import ServingFiles
from federator.security.trust_reload import ReloadResult, TrustFile

log = logging.getLogger("federator.server")


def reload_trust(trust: TrustFile, metrics: Metrics, *, asked: bool) -> ReloadResult:
    """Look at the trust file (`asked`: SIGHUP, read it whatever changed) and count what came of it."""
    result = trust.reload() if asked else trust.poll()
    if result is not ReloadResult.UNCHANGED:
        metrics.trust_reloads.labels(result.value).inc()
        metrics.trust_reload_failing.set(1 if result is ReloadResult.REFUSED else 0)
    return result


def reload_serving(serving: ServingFiles, metrics: Metrics, *, asked: bool) -> ReloadResult:
    """Look at the TLS files (`asked`: SIGHUP) and count what came of it."""
    result = serving.reload() if asked else serving.poll()
    if result is not ReloadResult.UNCHANGED:
        metrics.serving_certificate_reloads.labels(result.value).inc()
        metrics.serving_certificate_reload_failing.set(1 if result is ReloadResult.REFUSED else 0)
    metrics.serving_certificate_expiry.set(serving.expires_at)
    return result


class Reloads:
    """The trust file and the TLS files of one federator (either may be absent: --insecure, no --trust)."""

    def __init__(self, metrics: Metrics, *, trust: TrustFile | None, serving: ServingFiles | None) -> None:
        self.metrics = metrics
        self.trust = trust
        self.serving = serving
        if serving is not None:
            metrics.serving_certificate_expiry.set(serving.expires_at)

    def look(self, *, asked: bool = False) -> None:
        """One look at every file; a failure of one (a listener's bug) does not keep the other from its look."""
        for what, reload in (("the TLS files", self._serving), ("the trust file", self._trust)):
            try:
                reload(asked)
            except Exception:
                log.exception("reloading %s failed", what)

    def _trust(self, asked: bool) -> None:
        if self.trust is not None:
            reload_trust(self.trust, self.metrics, asked=asked)

    def _serving(self, asked: bool) -> None:
        if self.serving is not None:
            reload_serving(self.serving, self.metrics, asked=asked)

    def on_sighup(self) -> None:
        if self.trust is None and self.serving is None:
            log.warning("SIGHUP: there is no trust file (--trust) and no TLS file (--insecure) to reload")
            return
        log.info("SIGHUP: reloading %s", " and ".join(
            what for what, there in (("the trust file", self.trust), ("the TLS files", self.serving)) if there))
        self.look(asked=True)

    async def watch(self, every: float) -> None:
        """Poll the files: a mounted Secret changes under the federator, and no one sends it a SIGHUP."""
        while True:
            await asyncio.sleep(every)
            self.look()


__all__ = ["Reloads", "reload_serving", "reload_trust"]
