"""The dates of the agent's own TLS files: said at start, on every failed connection, and in its metrics.

Why: an agent whose certificate expired logged only gRPC's words for the handshake the federator refused,
`UNAVAILABLE: failed to connect to all addresses; ... Socket closed`, at every retry, for ever; the federator
logged nothing, and no metric said when a certificate would expire. Clusters issued the same day went
Partitioned, then Lost, together, and no line named the cause. Now the agent reads the notBefore and notAfter
of its certificate (--cert) and of the CA it checks the federator with (--ca) when it starts and after each
connection that failed, and:

- one it holds outside its dates is an ERROR naming the file, when it expired (or when it becomes valid) and
  how to get a new one, logged when what is wrong changes, not at every retry;
- one that expires within `WARN_WITHIN` is a WARNING at start;
- the agent's metrics carry each one's notAfter
  (`federator_agent_certificate_expiration_timestamp_seconds{certificate="agent"|"ca"}`), which the alert
  FederatorAgentCertificateExpiresSoon reads.

The files are read anew each time, as the agent's session reads them at each reconnect
(security/tls.py `TlsFiles.channel_credentials`): a renewed Secret is taken without a restart, and its new
dates are said ("renewed") and exported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from federator.security.tls import TlsFiles
from federator.timestamps import utc_seconds

log = logging.getLogger("federator.agent")
WARN_WITHIN = 14 * 86400.0
"""A certificate expiring sooner than this is a WARNING at start (the alert fires at the same distance)."""


@dataclass(frozen=True, slots=True)
class Dates:
    """One file's validity: its notBefore and notAfter (Unix seconds)."""

    flag: str  # --cert or --ca
    path: Path
    not_before: float
    not_after: float


class CertificateCheck:
    """Reads and judges the agent's TLS files; `cluster` and `provider` go into the fix it names."""

    def __init__(self, files: TlsFiles, *, cluster: str, provider: str = "",
                 on_dates: Callable[[str, float], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.files = files
        self.cluster = cluster
        self.provider = provider
        self.on_dates = on_dates  # told ("agent" | "ca", notAfter) at each read: the metric
        self.clock = clock
        self.problem = ""  # what is wrong with the files now, as last logged; "" when nothing is

    def at_start(self) -> str:
        """Check at start: an ERROR for a file outside its dates, a WARNING for one expiring within WARN_WITHIN.
        Returns the problem ('' if none)."""
        problem = self.check()
        if not problem:
            now = self.clock()
            for d in self._dates():
                if d.not_after - now < WARN_WITHIN:
                    log.warning("%s: %s expires at %s, in %s: %s", d.flag, d.path, utc_seconds(d.not_after),
                                _span(d.not_after - now), self._fix(d))
        return problem

    def check(self) -> str:
        """Read the files again; log an ERROR when what is wrong with them changes (and an INFO when it is
        fixed). Returns the problem ('' if none)."""
        now = self.clock()
        problems = []
        for d in self._dates():
            if now >= d.not_after:
                problems.append(f"{d.flag}: {d.path}: {self._whose(d)} expired at {utc_seconds(d.not_after)} "
                                f"({_span(now - d.not_after)} ago); the federator refuses the handshake (gRPC says "
                                f"only 'Socket closed'): {self._fix(d)}")
            elif now < d.not_before:
                problems.append(f"{d.flag}: {d.path}: {self._whose(d)} is not valid before {utc_seconds(d.not_before)} "
                                f"(in {_span(d.not_before - now)}): is this machine's clock right? Or "
                                f"{self._fix(d)}")
        problem = "; ".join(problems)
        if problem != self.problem:
            if problem:
                log.error("%s", problem)
            else:
                log.info("TLS files renewed: %s", ", ".join(f"{d.flag} {d.path} valid until {utc_seconds(d.not_after)}"
                                                          for d in self._dates()))
            self.problem = problem
        return problem

    def _dates(self) -> list[Dates]:
        """The dates of --cert and --ca as they are on disk now: of each file's first certificate (the agent's own,
        before any chain; the federation's CA). A file that cannot be read is left out: the session's read of it
        fails, naming it."""
        found = []
        for flag, kind, path in (("--cert", "agent", self.files.cert), ("--ca", "ca", self.files.ca)):
            if path is None:
                continue
            try:
                first = x509.load_pem_x509_certificates(path.read_bytes())[0]
            except (OSError, ValueError, IndexError):
                continue
            found.append(Dates(flag, path, first.not_valid_before_utc.timestamp(),
                               first.not_valid_after_utc.timestamp()))
            if self.on_dates is not None:
                self.on_dates(kind, found[-1].not_after)
        return found

    def _whose(self, d: Dates) -> str:
        return f"the certificate of cluster {self.cluster}" if d.flag == "--cert" else "the federation's CA"

    def _fix(self, d: Dates) -> str:
        if d.flag == "--ca":
            return ("put the federation's current ca.crt there (in the agent chart, the Secret it mounts, "
                    "tls.secretName: its ca.crt)")
        provider = f" --provider {self.provider}" if self.provider else ""
        return (f"issue a new one (`federator certs issue --cluster {self.cluster}{provider}`) and put it and its "
                f"key there (in the agent chart, the Secret it mounts, tls.secretName: tls.crt and tls.key; with "
                f"tls.certManager, see why cert-manager did not renew it); the agent takes it at its next "
                f"reconnect, no restart needed")



def _span(seconds: float) -> str:
    """A duration for a person: days past two days, else hours, else minutes."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{max(seconds, 0) / 60:.0f} min"


__all__ = ["WARN_WITHIN", "CertificateCheck"]
