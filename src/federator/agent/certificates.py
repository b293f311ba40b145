"""The dates of the agent's own TLS files: said at start, on every failed connection, and in its metrics.

Why: an agent whose certificate expired logged only gRPC's words for the handshake the federator refused,
`UNAVAILABLE: failed to connect to all addresses; ... Socket closed`, at every retry, for ever; the federator
logged nothing, and no metric said when a certificate would expire. Clusters issued the same day went
Partitioned, then Lost, together, and no line named the cause. Now the agent reads the notBefore and notAfter
of its certificate (--cert) and of the CA it checks the federator with (--ca) when it starts, after each
connection that failed, and every 10 minutes (session.py, CERTIFICATE_CHECK_TICKS: a renewal under a healthy stream
is seen there, not only at the next reconnect), and:

- one it holds outside its dates is an ERROR naming the file, when it expired (or when it becomes valid) and
  how to get a new one, logged when what is wrong changes, not at every retry;
- one that expires within `WARN_WITHIN` is a WARNING at start;
- the agent's metrics carry each one's notAfter
  (`federator_agent_certificate_expiration_timestamp_seconds{certificate="agent"|"ca"}`), which the alert
  FederatorAgentCertificateExpiresSoon reads.

A --ca bundle of several CAs (a CA rollover: the old federation CA and the new one) is judged by the CA in it that
expires last (outside QA F10: judged by its first, the old CA, every agent of a correctly staged rollover warned
"put the federation's current ca.crt there", which it had, and fired the alert). The bundle keeps the agent able to
check the federator while any of its CAs is in date and signed the certificate the federator serves; which one
that is, the agent cannot see (gRPC does not hand a client the peer's certificate), and moving the serving
certificate to the new CA before the old one ends is the rollover's own step, which the federator's
FederatorServingCertificateExpiresSoon and this agent's handshake counter (`server_untrusted`) watch.

The fix named for an expired --cert is the command for the CA that signed it (F5: the provider *label* was
named, `--provider tokyo-dc`, in a federation with no such provider CA): no --provider when the federation's CA
in --ca signed it, the provider of a CA `certs provider` made ("NAME provider CA"), else both forms.

The files are read anew each time, as the agent's session reads them at each reconnect
(security/tls.py `TlsFiles.channel_credentials`): a renewed Secret is taken without a restart, and its new
dates are said ("renewed") and exported.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

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
    of: int = 1  # certificates in the file: a --ca bundle's dates are those of its CA that expires last


class CertificateCheck:
    """Reads and judges the agent's TLS files; `cluster` goes into the fix it names, and `provider` (the cluster's
    provider label) only when the certificate's issuer says a provider's CA of unknown name signed it."""

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
                    log.warning("%s: %s%s expires at %s, in %s: %s", d.flag, d.path,
                                f" ({self._whose(d)})" if d.of > 1 else "", utc_seconds(d.not_after),
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
        """The dates of --cert and --ca as they are on disk now: of --cert's first certificate (the agent's own,
        before any chain) and of the --ca CA that expires last (a rollover's bundle is good while that one is).
        A file that cannot be read is left out: the session's read of it fails, naming it."""
        found = []
        for flag, kind, path in (("--cert", "agent", self.files.cert), ("--ca", "ca", self.files.ca)):
            if path is None:
                continue
            try:
                certs = x509.load_pem_x509_certificates(path.read_bytes())
            except (OSError, ValueError):
                continue
            if not certs:
                continue
            judged = certs[0] if kind == "agent" else max(certs, key=lambda c: c.not_valid_after_utc)
            found.append(Dates(flag, path, judged.not_valid_before_utc.timestamp(),
                               judged.not_valid_after_utc.timestamp(), len(certs) if kind == "ca" else 1))
            if self.on_dates is not None:
                self.on_dates(kind, found[-1].not_after)
        return found

    def _whose(self, d: Dates) -> str:
        if d.flag == "--cert":
            return f"the certificate of cluster {self.cluster}"
        return "the federation's CA" if d.of == 1 else f"the last to expire of its {d.of} CAs"

    def _fix(self, d: Dates) -> str:
        if d.flag == "--ca":
            return ("put the federation's current ca.crt there (in the agent chart, the Secret it mounts, "
                    "tls.secretName: its ca.crt)")
        return (f"issue a new one ({self.issue_command()}) and put it and its "
                f"key there (in the agent chart, the Secret it mounts, tls.secretName: tls.crt and tls.key; with "
                f"tls.certManager, see why cert-manager did not renew it); the agent takes it at its next "
                f"connection and reads its date within 10 minutes, no restart needed")

    def issue_command(self) -> str:
        """The `certs issue` that renews --cert, for the CA that signed it (its issuer, checked against --ca)."""
        plain = f"`federator certs issue --cluster {self.cluster}`"
        provider = issuing_provider(self.files)
        if provider is None:  # unreadable: either CA may have signed it
            return (f"{plain} if the federation's CA signed it, or `federator certs issue --cluster {self.cluster} "
                    f"--provider NAME` with the CA of its provider NAME")
        if provider == FEDERATION:
            return plain
        if provider != "?":
            return f"`federator certs issue --cluster {self.cluster} --provider {provider}`"
        name = self.provider or "NAME"
        return (f"`federator certs issue --cluster {self.cluster} --provider {name}`, {name} being the provider "
                f"whose CA signed it (issuer {self._issuer()})")

    def _issuer(self) -> str:
        try:
            return x509.load_pem_x509_certificates(self.files.cert.read_bytes())[0].issuer.rfc4514_string() \
                if self.files.cert is not None else "?"
        except (OSError, ValueError, IndexError):
            return "?"


FEDERATION = ""
"""`issuing_provider`'s answer for a certificate the federation's CA (one of --ca) signed."""
_PROVIDER_CA = re.compile(r"^(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?) provider CA$")
"""The common name `federator certs provider` gives a provider's CA it creates (security/pki.py create_ca)."""


def issuing_provider(files: TlsFiles) -> str | None:
    """Which CA signed the agent's certificate: FEDERATION ('') for a CA of --ca, a provider's name for a CA
    `certs provider` made, '?' for another CA (a provider's own, imported), None when the files cannot be read."""
    if files.cert is None or files.ca is None:
        return None
    try:
        cert = x509.load_pem_x509_certificates(files.cert.read_bytes())[0]
        cas = x509.load_pem_x509_certificates(files.ca.read_bytes())
    except (OSError, ValueError, IndexError):
        return None
    for ca in cas:
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except Exception:  # noqa: BLE001 - InvalidSignature, an unsupported key: not this CA
            continue
        return FEDERATION
    names = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    found = _PROVIDER_CA.match(str(names[0].value)) if names else None
    return found.group("name") if found else "?"


def _span(seconds: float) -> str:
    """A duration for a person: days past two days, else hours, else minutes."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{max(seconds, 0) / 60:.0f} min"


__all__ = ["FEDERATION", "WARN_WITHIN", "CertificateCheck", "issuing_provider"]
