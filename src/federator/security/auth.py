"""Who is calling: identities from client certificates or bearer tokens, checked against revocations.

The federator serves TLS with client certificates requested (and verified
against the federation's CA when presented). Then each service decides:

- the agent stream needs a *cluster* certificate, and the Hello must name the
  same cluster as the certificate;
- the job API needs a *user* certificate or a bearer token from the token file;
- a revoked certificate (by serial) or identity (by name) is refused.

Transports translate an `AuthDenied` into a gRPC status at the edge.
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.oid import NameOID

from federator.security.limits import RejectReason
from federator.security.pki import Identity, IdentityKind, identity_of
from federator.yamltext import read_text

if TYPE_CHECKING:
    from federator.security.trust import Trust


@functools.lru_cache(maxsize=4096)
def _parse_certificate(pem: bytes) -> x509.Certificate:
    """A client certificate parsed once per distinct PEM: every call of a client carries the same bytes, and
    parsing was a measurable share of a Submit's CPU. Revocation and trust are still checked on every call."""
    return x509.load_pem_x509_certificate(pem)


log = logging.getLogger("federator.security")
_TOKEN_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Peer:
    """An authenticated caller. `identity` is None for a bearer token or an insecure listener.

    `name` is the user's name (a certificate's identity, or a token's name) and
    `groups` what the credential says about them: the certificate subject's O
    attributes, or the token file's groups. What they may do is decided from
    these by `security.authz`, not here.
    """

    identity: Identity | None
    via: str  # "certificate", "token" or "insecure"
    serial: int = 0
    name: str = ""
    groups: frozenset[str] = frozenset()
    issuer: str = ""  # the provider whose CA signed a cluster certificate ("" = the federation's CA)
    # the client certificate itself: a reloaded trust file is asked again about the live agent streams
    certificate: x509.Certificate | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and who it stands for (a token file line: `TOKEN [NAME [GROUP,GROUP...]]`)."""

    secret: str
    name: str = "token"
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AuthDenied:
    """A refusal: `unauthenticated` (no usable credentials) or permission denied, and why."""

    reason: RejectReason
    message: str

    @property
    def unauthenticated(self) -> bool:
        return self.reason is RejectReason.UNAUTHENTICATED


@dataclass(frozen=True, slots=True)
class Revocations:
    identities: frozenset[Identity] = frozenset()
    serials: frozenset[int] = frozenset()


def parse_revocations(text: str, *, source: str = "revoked.txt") -> Revocations:
    """Lines of `cluster NAME`, `user NAME` or `serial HEX`; `#` starts a comment."""
    identities: set[Identity] = set()
    serials: set[int] = set()
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, value = line.partition(" ")
        value = value.strip()
        if kind in (IdentityKind.CLUSTER.value, IdentityKind.USER.value) and value:
            identities.add(Identity(IdentityKind(kind), value))
        elif kind == "serial" and value:
            try:
                serials.add(int(value.replace(":", ""), 16))
            except ValueError:
                raise ValueError(f"{source}:{n}: serial: not a hexadecimal number: {value!r}") from None
        else:
            raise ValueError(f"{source}:{n}: expected 'cluster NAME', 'user NAME' or 'serial HEX', got {line!r}")
    return Revocations(frozenset(identities), frozenset(serials))


class RevocationList:
    """The revocation file, re-read whenever it changes (checked at most once per `interval`)."""

    def __init__(self, path: Path | None, *, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_revoked: Callable[[list[str]], None] | None = None) -> None:
        self.path = path
        self.on_revoked = on_revoked  # told each entry new to the list ("cluster east-1", "serial 1f"): the audit log
        self.interval = interval
        self.clock = clock
        self.current = Revocations()
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")
        self.problem: str | None = None  # why the file's last version was not taken
        self.reload()
        if self.problem is not None:  # a list that never loaded would revoke nothing: refuse to start on it
            raise ValueError(self.problem)

    def reload(self) -> bool:
        """Re-read the file if it changed; True if the list changed. A bad file keeps the last good list."""
        self._checked = self.clock()
        if self.path is None:
            return False
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return False
            text = read_text(self.path)
        except FileNotFoundError:
            stamp, text = (0, 0), ""
        except (OSError, ValueError) as exc:
            self.problem = f"{self.path}: {exc}"
            log.error("cannot read the revocation list %s: %s; keeping the last one", self.path, exc)
            return False
        self._stamp = stamp
        try:
            new = parse_revocations(text, source=str(self.path))
        except ValueError as exc:
            self.problem = str(exc)
            log.error("%s; keeping the last good revocation list", exc)
            return False
        self.problem = None
        changed = new != self.current
        if changed:
            log.info("revocation list %s: %d identities, %d serials", self.path, len(new.identities),
                     len(new.serials))
            added = sorted(str(i) for i in new.identities - self.current.identities) + \
                [f"serial {s:x}" for s in sorted(new.serials - self.current.serials)]
            if added and self.on_revoked is not None:
                self.on_revoked(added)
        self.current = new
        return changed

    def maybe_reload(self) -> bool:
        if self.clock() - self._checked < self.interval:
            return False
        return self.reload()

    def revoked(self, identity: Identity | None, serial: int) -> bool:
        self.maybe_reload()
        return (identity is not None and identity in self.current.identities) or serial in self.current.serials


def _first(auth: Mapping[str, Sequence[bytes]], key: str) -> bytes | None:
    values = auth.get(key) or []
    return values[0] if values else None


class Authenticator:
    """Decides whether a call may proceed, from its TLS peer certificate and metadata."""

    def __init__(self, *, insecure: bool = False, revocations: RevocationList | None = None,
                 tokens: Sequence[str | Token] = (), trust: Trust | None = None) -> None:
        self.insecure = insecure
        self.trust = trust
        self._trust_checked: dict[bytes, tuple[str, str]] = {}  # PEM -> (issuer, problem) under self.trust
        self.revocations = revocations or RevocationList(None)
        self._tokens = tuple((t.secret.encode(), t) for t in (Token(x) if isinstance(x, str) else x for x in tokens)
                             if t.secret)

    def use_trust(self, trust: Trust) -> None:
        """A reloaded trust file (security/trust_reload.py): new calls are checked against it."""
        self.trust = trust
        self._trust_checked = {}

    def certificate_peer(self, auth_context: Mapping[str, Sequence[bytes]]) -> Peer | AuthDenied | None:
        """The peer of a verified client certificate; None if the call carries none."""
        pem = _first(auth_context, "x509_pem_cert")
        if pem is None:
            return None
        try:
            cert = _parse_certificate(pem)
        except ValueError:
            return AuthDenied(RejectReason.UNAUTHENTICATED, "the client certificate cannot be parsed")
        identity = identity_of(cert)
        if identity is None:
            return AuthDenied(RejectReason.UNAUTHENTICATED,
                              "the client certificate carries no federator://cluster/ or federator://user/ "
                              "identity (issue one with `federator certs issue`)")
        if self.revocations.revoked(identity, cert.serial_number):
            return AuthDenied(RejectReason.REVOKED, f"the certificate of {identity} (serial "
                                                    f"{cert.serial_number:x}) is revoked")
        issuer = ""
        if self.trust is not None:
            checked = self._trust_checked.get(pem)
            if checked is None:  # a signature check per CA: once per distinct certificate, not per call
                checked = self.trust.check(identity, cert)
                if len(self._trust_checked) >= 4096:
                    self._trust_checked.clear()
                self._trust_checked[pem] = checked
            issuer, problem = checked
            if problem:
                return AuthDenied(RejectReason.IDENTITY_MISMATCH, problem)
            if self.trust.revoked(issuer, identity, cert.serial_number):
                return AuthDenied(RejectReason.REVOKED, f"provider {issuer!r} revoked the certificate of {identity} "
                                                        f"(serial {cert.serial_number:x})")
        groups = frozenset(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
        return Peer(identity, "certificate", cert.serial_number, name=identity.name, groups=groups, issuer=issuer,
                    certificate=cert)

    def revoked(self, peer: Peer) -> bool:
        """Is this (earlier accepted) peer revoked now, by the federation's list or its provider's?"""
        if peer.identity is None:
            return False
        if self.revocations.revoked(peer.identity, peer.serial):
            return True
        return self.trust is not None and self.trust.revoked(peer.issuer, peer.identity, peer.serial)

    def agent(self, auth_context: Mapping[str, Sequence[bytes]], cluster: str) -> Peer | AuthDenied:
        """May this stream speak for `cluster` (the name in its Hello)?"""
        if self.insecure:
            return Peer(None, "insecure")
        peer = self.certificate_peer(auth_context)
        if peer is None:
            return AuthDenied(RejectReason.UNAUTHENTICATED, "the agent stream needs a cluster client certificate")
        if isinstance(peer, AuthDenied):
            return peer
        assert peer.identity is not None
        if peer.identity.kind is not IdentityKind.CLUSTER:
            return AuthDenied(RejectReason.IDENTITY_MISMATCH,
                              f"the agent stream needs a cluster certificate, got one for {peer.identity}")
        if peer.identity.name != cluster:
            return AuthDenied(RejectReason.IDENTITY_MISMATCH,
                              f"hello.cluster: {cluster[:80]!r} does not match the client certificate, which is "
                              f"for cluster {peer.identity.name!r}")
        return peer

    def cluster_caller(self, auth_context: Mapping[str, Sequence[bytes]]) -> Peer | None:
        """The peer of a verified, unrevoked cluster certificate (its trust-file binding checked as on the agent
        stream; `issuer` its provider), or None for any other caller. What it may do beyond reading its cluster
        (drain its provider's clusters) is security/provider_rights.py's."""
        if self.insecure:
            return None
        peer = self.certificate_peer(auth_context)
        if isinstance(peer, Peer) and peer.identity is not None and peer.identity.kind is IdentityKind.CLUSTER:
            return peer
        return None

    def cluster_reader(self, auth_context: Mapping[str, Sequence[bytes]]) -> str | None:
        """The cluster a verified, unrevoked cluster certificate speaks for (its trust-file binding checked as on
        the agent stream), or None for any other caller, who is judged by `user`.

        Why: a provider holds its clusters' certificates and no user (a provider's CA may certify none), and could
        not see its own cluster's state, cordon or maintenance (outside provider QA, F5). ClusterService.List
        takes this, and shows that one cluster only; Drain and Uncordon take `cluster_caller` (a provider's own
        clusters, security/provider_rights.py); every other call of the job API still refuses it (`user`)."""
        peer = self.cluster_caller(auth_context)
        return peer.identity.name if peer is not None and peer.identity is not None else None

    def user(self, auth_context: Mapping[str, Sequence[bytes]],
             metadata: Sequence[tuple[str, str | bytes]]) -> Peer | AuthDenied:
        """May this call use the job API? A user certificate or a bearer token."""
        if self.insecure:
            return Peer(None, "insecure")
        peer = self.certificate_peer(auth_context)
        if isinstance(peer, AuthDenied):
            return peer
        if peer is not None:
            assert peer.identity is not None
            if peer.identity.kind is IdentityKind.USER:
                return peer
            return AuthDenied(RejectReason.IDENTITY_MISMATCH,
                              f"the job API takes a user certificate or a bearer token, not the certificate of "
                              f"{peer.identity}")
        for key, value in metadata:
            if key.lower() != "authorization":
                continue
            raw = value if isinstance(value, bytes) else value.encode()
            scheme, _, token = raw.partition(b" ")
            if scheme.lower() == b"bearer":
                found = None
                for secret, entry in self._tokens:  # compare with every token: no early exit to time
                    if hmac.compare_digest(token.strip(), secret):
                        found = entry
                if found is not None:
                    return Peer(None, "token", name=found.name, groups=found.groups)
            return AuthDenied(RejectReason.UNAUTHENTICATED, "the bearer token is not valid")
        return AuthDenied(RejectReason.UNAUTHENTICATED,
                          "the job API needs a user client certificate or an 'authorization: Bearer TOKEN' header")


def parse_tokens(text: str, *, source: str = "tokens") -> list[Token]:
    """A token file: `TOKEN [NAME [GROUP,GROUP...]]` per line; `#` starts a comment.

    A token without a name stands for the user `token` (the format before
    tenancy had one field; such a token sees only the jobs it submitted).
    """
    out: list[Token] = []
    for n, raw in enumerate(text.splitlines(), 1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 3:
            raise ValueError(f"{source}:{n}: expected 'TOKEN [NAME [GROUP,GROUP...]]', got {len(fields)} fields")
        name = fields[1] if len(fields) > 1 else "token"
        if not _TOKEN_NAME.match(name):
            raise ValueError(f"{source}:{n}: name: must be a lower-case DNS name, got {name[:80]!r}")
        groups = frozenset(g for g in (fields[2].split(",") if len(fields) > 2 else ()) if g)
        out.append(Token(fields[0], name, groups))
    return out


def load_tokens(path: Path) -> list[Token]:
    try:
        text = read_text(path)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return parse_tokens(text, source=str(path))


__all__ = ["AuthDenied", "Authenticator", "Peer", "RevocationList", "Revocations", "Token", "load_tokens",
           "parse_revocations", "parse_tokens"]
