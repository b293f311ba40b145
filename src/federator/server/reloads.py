"""The files a running federator re-reads: the provider trust file, its own TLS files and the policy file.

All are mounted Secrets or ConfigMaps in a cluster, swapped under the running process (a provider added or
revoked; a certificate cert-manager renewed; an organisation onboarded by `helm upgrade`), and no one sends it a
SIGHUP. So they are polled together every `--trust-poll-seconds`, and SIGHUP re-reads them all at once. What
came of each look is counted in the metrics (`federator_trust_reload_total`,
`federator_serving_certificate_reload_total`, `federator_policy_reload_total`, and a gauge each while the file
on disk is refused); the certificate served says when it expires. A policy reload, taken or refused, is an audit
line too (`policy.reload`): it changes who may submit where, and what each organisation is granted.
"""

from __future__ import annotations

import asyncio
import logging

from federator.metrics import Metrics
from federator.security.audit import AuditLog
from federator.security.serving_reload import ServingFiles
from federator.security.trust_reload import ReloadResult, TrustFile
from federator.server.policy_file import PolicyFile

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


def reload_policy(policy: PolicyFile, metrics: Metrics, audit: AuditLog, *, asked: bool) -> ReloadResult:
    """Look at the policy file (`asked`: SIGHUP), count what came of it, and audit a reload taken or refused."""
    result = policy.reload() if asked else policy.poll()
    if result is ReloadResult.UNCHANGED:
        return result
    metrics.policy_reloads.labels(result.value).inc()
    metrics.policy_reload_failing.set(1 if result is ReloadResult.REFUSED else 0)
    refused = result is ReloadResult.REFUSED
    audit.record("policy.reload", identity=None, obj={"kind": "Policy", "file": str(policy.path)},
                 result="refused" if refused else "accepted", code="INVALID_ARGUMENT" if refused else "OK",
                 message=policy.problem if refused else policy.change)
    return result


class Reloads:
    """The trust file, the TLS files and the policy file of one federator (any may be absent: no --trust,
    --insecure, no --policy)."""

    def __init__(self, metrics: Metrics, *, trust: TrustFile | None, serving: ServingFiles | None,
                 policy: PolicyFile | None = None, audit: AuditLog | None = None) -> None:
        self.metrics = metrics
        self.trust = trust
        self.serving = serving
        self.policy = policy
        self.audit = audit or AuditLog(None)
        if serving is not None:
            metrics.serving_certificate_expiry.set(serving.expires_at)

    @property
    def watched(self) -> bool:
        """Whether there is any file to look at."""
        return any(f is not None for f in (self.trust, self.serving, self.policy))

    def look(self, *, asked: bool = False) -> None:
        """One look at every file; a failure of one (a listener's bug) does not keep the others from their look."""
        for what, reload in (("the TLS files", self._serving), ("the trust file", self._trust),
                             ("the policy file", self._policy)):
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

    def _policy(self, asked: bool) -> None:
        if self.policy is not None:
            reload_policy(self.policy, self.metrics, self.audit, asked=asked)

    def on_sighup(self) -> None:
        if not self.watched:
            log.warning("SIGHUP: there is no trust file (--trust), no TLS file (--insecure) and no policy file "
                        "(--policy) to reload")
            return
        log.info("SIGHUP: reloading %s", " and ".join(
            what for what, there in (("the trust file", self.trust), ("the TLS files", self.serving),
                                     ("the policy file", self.policy)) if there))
        self.look(asked=True)

    async def watch(self, every: float) -> None:
        """Poll the files: a mounted Secret changes under the federator, and no one sends it a SIGHUP."""
        while True:
            await asyncio.sleep(every)
            self.look()


__all__ = ["Reloads", "reload_policy", "reload_serving", "reload_trust"]
