"""The federator's own TLS files kept current while it runs: its certificate, key and CA, re-read when they change.

Why: the serving certificate was read once, at start. cert-manager (the chart's `tls.certManager`) renews it a
third of its life before it expires and swaps the Secret volume under the running federator, which went on
presenting the old one until it expired: then every agent's handshake failed, and every provider's clusters
went Partitioned, then Lost, at once, for want of a restart. Now the files are looked at with the trust file
(`--trust-poll-seconds`, and SIGHUP), and a renewed pair is served from the next handshake
(security/tls.py `ServedTls`); connections already open keep theirs.

A change that does not load (a certificate and a key that are not a pair, as when the files are copied one at a
time, or a certificate already expired) is refused, naming the file, and the last good pair stays served:
never a listener with nothing to present. Without a trust file the --ca file is also the client CAs, and
follows too; with one, the trust file's reload carries the CA (security/trust_reload.py hashes it).

What is served is in the metrics: when the served certificate expires, or the CA of --ca that signed it if that
ends first (`served_until`; an alert fires a week before), and whether the files on disk are refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from cryptography import x509

from federator.security.tls import ServedTls, TlsError, TlsFiles
from federator.security.watched import ReloadResult, Watched, digest
from federator.timestamps import utc_seconds

log = logging.getLogger("federator.security")


def not_after(cert_pem: bytes) -> float:
    """When the first certificate of a PEM chain expires (Unix seconds)."""
    return x509.load_pem_x509_certificates(cert_pem)[0].not_valid_after_utc.timestamp()


def served_until(cert_pem: bytes, ca_pem: bytes | None) -> float:
    """Until when clients can check the served certificate: its notAfter, or that of the CA of --ca that signed it
    if that ends first. `certs issue --server` does not cap a certificate at its CA's end, and during a CA
    rollover (docs/security.md) a certificate of the old CA still served when that CA ends fails every new
    handshake though it is in date itself (outside QA F10): FederatorServingCertificateExpiresSoon reads this."""
    leaf = x509.load_pem_x509_certificates(cert_pem)[0]
    until = leaf.not_valid_after_utc.timestamp()
    try:
        cas = x509.load_pem_x509_certificates(ca_pem) if ca_pem else []
    except ValueError:
        return until
    for ca in cas:
        if ca.subject != leaf.issuer:
            continue
        try:
            leaf.verify_directly_issued_by(ca)
        except Exception:  # noqa: BLE001 - InvalidSignature, an unsupported key: not this CA
            continue
        return min(until, ca.not_valid_after_utc.timestamp())
    return until


class ServingFiles(Watched):
    """The files a `ServedTls` was read from; `poll` re-reads them if their content changed, `reload` in any
    case. `with_ca`: the --ca file is also the client CAs (no trust file)."""

    def __init__(self, files: TlsFiles, served: ServedTls, *, with_ca: bool,
                 clock: Callable[[], float] = time.time) -> None:
        self.files = files
        self.served = served
        self.with_ca = with_ca
        self.clock = clock
        self._seen = self._fingerprint()
        try:
            ca = files.ca.read_bytes() if files.ca is not None else None
        except OSError:
            ca = None
        self.expires_at = served_until(served.certificate, ca)
        self.problem = ""  # why the files on disk are refused; "" while what is served is what they say

    def reload(self) -> ReloadResult:
        self._seen = self._fingerprint()
        try:
            ca, cert, key = self.files.read()
            if cert is None or key is None:
                raise TlsError("--cert and --key: the federator needs its serving certificate and key")
            expires = not_after(cert)
            if expires <= self.clock():
                raise TlsError(f"--cert: {self.files.cert} expired at {utc_seconds(expires)}")
        except TlsError as exc:
            self.problem = str(exc)
            log.error("TLS files refused, still serving the certificate that expires at %s: %s",
                      utc_seconds(self.expires_at), exc)
            return ReloadResult.REFUSED
        if (key, cert) != (self.served.key, self.served.certificate):
            self.served.use_pair(key, cert)
            log.info("serving certificate reloaded from %s: valid until %s, served from the next handshake",
                     self.files.cert, utc_seconds(expires))
        if self.with_ca and ca != self.served.pem:
            self.served.use_client_roots(ca)
            log.info("client CAs reloaded from %s (--ca): taken from the next handshake", self.files.ca)
        self.expires_at, self.problem = served_until(cert, ca), ""
        return ReloadResult.OK

    def _fingerprint(self) -> bytes:
        return digest([self.files.ca, self.files.cert, self.files.key])



__all__ = ["ServingFiles", "not_after", "served_until"]
