"""A small certificate authority for one federation: the CA, the federator, clusters and users.

Identities live in a SAN URI so they cannot be confused with host names:
`federator://cluster/NAME` for an agent, `federator://user/NAME` for a person
or a tool using the job API. The federator takes a cluster's identity from its
certificate, never from what the agent says in its Hello. A cluster certificate
may also bind the cluster's region, in a second SAN URI `federator://region/R`
(`certs issue --cluster NAME --region R`): a Hello claiming another region is
refused (security/region_binding.py). A separate URI, not a part of the
identity's, so a federator older than the binding reads the identity as before.

A certs folder (`federator certs init`) holds::

    ca.crt ca.key                 the federation's CA (keep ca.key offline in production)
    server.crt server.key         the federator's serving certificate (renewed by `certs issue --server`)
    clusters/NAME.crt NAME.key    one per member cluster (`certs issue --cluster NAME`)
    users/NAME.crt NAME.key       one per user (`certs issue --user NAME`; `admin` is made by init)
    revoked.txt                   the revocation list the federator reloads (`certs revoke`)
    trust.yaml                    provider CAs and the clusters each certifies (`certs provider`)
    providers/NAME/               a provider's folder of the same shape: ca.crt ca.key clusters/ revoked.txt
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federator.security.limits import valid_region

URI_PREFIX = "federator://"
REGION_URI = f"{URI_PREFIX}region/"  # a cluster certificate's bound region (region_of)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$")


class PkiError(ValueError):
    """A certificate operation that cannot be done; the message says why."""


class IdentityKind(StrEnum):
    CLUSTER = "cluster"
    USER = "user"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class Identity:
    kind: IdentityKind
    name: str

    @property
    def uri(self) -> str:
        return f"{URI_PREFIX}{self.kind.value}/{self.name}"

    def __str__(self) -> str:
        return f"{self.kind.value} {self.name}"


@dataclass(frozen=True, slots=True)
class CertsDir:
    """Where each file of a federation's certificates lives."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def revoked(self) -> Path:
        return self.root / "revoked.txt"

    @property
    def trust(self) -> Path:
        """Provider CAs and the clusters each may certify (security/trust.py)."""
        return self.root / "trust.yaml"

    def provider(self, name: str) -> CertsDir:
        """A provider's own folder: its CA, its clusters' certificates, its revocation list."""
        return CertsDir(self.root / "providers" / name)

    def cert(self, identity: Identity) -> Path:
        if identity.kind is IdentityKind.SERVER:
            return self.server_cert
        return self.root / f"{identity.kind.value}s" / f"{identity.name}.crt"

    def key(self, identity: Identity) -> Path:
        if identity.kind is IdentityKind.SERVER:
            return self.server_key
        return self.root / f"{identity.kind.value}s" / f"{identity.name}.key"


MAX_DAYS = 36_500  # a hundred years; X.509 dates end in 9999, and Python's before that


def _host_ok(host: str) -> bool:
    """A name a TLS client may verify the federator by: an IP address, or a DNS name (a leading *. allowed)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.removeprefix("*.").split(".")
    return len(host) <= 253 and all(_DNS_LABEL.match(label) for label in labels)


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise PkiError(f"--days: must be 1 to {MAX_DAYS}, got {days}")


def _check_hosts(hosts: tuple[str, ...], flag: str = "--server-name") -> None:
    for host in hosts:
        if not _host_ok(host):
            raise PkiError(f"{flag}: must be a DNS name or an IP address, got {host!r}")


def server_names_of(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names and IP addresses a serving certificate is valid for, in its order."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(str(name.value) for name in san if isinstance(name, x509.DNSName | x509.IPAddress))


def check_name(kind: IdentityKind, name: str) -> None:
    if not _NAME.match(name):
        raise PkiError(f"--{kind.value}: must be a lower-case DNS name of at most 63 characters, got {name!r}")


def check_group(group: str) -> None:
    """A group of a user certificate (its subject's O): a name as the tenancy policy's groups are."""
    if not _NAME.match(group):
        raise PkiError(f"--group: must be a lower-case DNS name of at most 63 characters, got {group!r}")


def identity_of(cert: x509.Certificate) -> Identity | None:
    """The federator identity in a certificate's SAN URIs, if it has exactly one."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    found = []
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if not uri.startswith(URI_PREFIX):
            continue
        kind, _, name = uri[len(URI_PREFIX):].partition("/")
        if kind in {k.value for k in IdentityKind} and _NAME.match(name):
            found.append(Identity(IdentityKind(kind), name))
    return found[0] if len(found) == 1 else None


def region_of(cert: x509.Certificate) -> str:
    """The region a cluster certificate binds its cluster to (its `federator://region/R` SAN URI), or "" if it binds
    none (a certificate issued without --region, or before the binding existed: the Hello's region is then the
    agent's own claim). Two different regions in one certificate bind nothing a Hello could match: "?" is returned,
    which no valid region equals, so every Hello is refused naming it."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    found = {uri[len(REGION_URI):] for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
             if uri.startswith(REGION_URI)}
    if not found:
        return ""
    return found.pop() if len(found) == 1 else "?"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _replace(path: Path, data: bytes, mode: int) -> None:
    """Write `path` whole or not at all: a temporary file in the same folder, then os.replace. A process that
    reads these files while they are renewed (the federator polls its own; an agent reads its own at each
    reconnect) sees the old file or the new one, never half of one.

    A folder that cannot be made or written (`--dir` under a file, read-only, full) is a PkiError naming the
    path, which every `federator certs` action prints as one line: it was a traceback."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except OSError as exc:
        raise PkiError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PkiError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    _replace(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()), 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _replace(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError(f"{path}: cannot read a PEM certificate: {exc}") from exc


def create_ca(certs: CertsDir, *, common_name: str, days: int = 3650) -> x509.Certificate:
    """A self-signed CA in `certs` (ca.crt, ca.key): the federation's, or a provider's (`providers/NAME`)."""
    _check_days(days)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(certs.ca_key, key)
    _write_cert(certs.ca_cert, cert)
    return cert


def init_ca(certs: CertsDir, *, common_name: str = "federator CA", days: int = 3650,
            server_names: tuple[str, ...] = ("localhost", "127.0.0.1"), force: bool = False) -> None:
    """Create the CA, the federator's serving certificate and an `admin` user certificate."""
    if certs.ca_cert.exists() and not force:
        raise PkiError(f"{certs.ca_cert} exists; pass --force to replace the whole federation's CA")
    _check_days(days)
    _check_hosts(server_names)  # before anything is written: a half-made CA would need --force
    create_ca(certs, common_name=common_name, days=days)
    issue(certs, Identity(IdentityKind.SERVER, "federator"), server_names=server_names, days=days)
    issue(certs, Identity(IdentityKind.USER, "admin"), days=days)


def _ca_key_hint(certs: CertsDir) -> str:
    """What to do about a CA key `issue` cannot read. Where a CA certificate is there, agents and users trust it:
    `certs init` (the hint for a new folder) would refuse, and with --force would cut every one of them off at its
    next handshake (outside DR QA, D6). The key is restored from its offline copy, or the CA is rolled."""
    if not certs.ca_cert.exists():
        return "run `federator certs init` first"
    return (f"{certs.ca_cert} is there and every agent and user trusts it: restore ca.key from its offline copy, "
            "or if it is lost roll to a new CA (docs/security.md, \"Rolling the federation CA\"); do not run "
            "`certs init --force` here, which replaces the CA and cuts every agent and user off at once")


def issue(certs: CertsDir, identity: Identity, *, server_names: tuple[str, ...] = (), days: int = 825,
          groups: tuple[str, ...] = (), names_flag: str = "--server-name", region: str = "") -> Path:
    """Sign a certificate for a cluster, a user or the federator; returns the certificate's path.

    A user's `groups` go in the subject as O attributes (Kubernetes does the
    same with client certificates): the tenancy policy grants queues and job
    sharing to groups (docs/security.md).

    The key is written before the certificate, each file replaced whole: a
    process reading the pair between the two sees the new key with the old
    certificate, refuses that pair as not one (security/tls.py) and takes the
    next look's; and once the new certificate is there, which is what says a
    renewal happened, its key is there too. `names_flag` names the flag the
    server names came from, in an error. `region`: a cluster certificate's
    bound region (`region_of`)."""
    if identity.kind is not IdentityKind.SERVER:
        check_name(identity.kind, identity.name)
    if region:
        if identity.kind is not IdentityKind.CLUSTER:
            raise PkiError("--region: only a cluster certificate binds a region")
        if not valid_region(region):
            raise PkiError(f"--region: must be a region name as agents give it (a lower-case DNS name of at most "
                           f"63 characters), got {region!r}")
    for group in groups:
        if identity.kind is not IdentityKind.USER:
            raise PkiError("--group: only a user certificate carries groups")
        check_group(group)
    _check_days(days)
    _check_hosts(server_names, names_flag)
    try:
        ca_key = serialization.load_pem_private_key(certs.ca_key.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise PkiError(f"{certs.ca_key}: cannot read the CA key ({_ca_key_hint(certs)}): {exc}") from exc
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{certs.ca_key}: not an EC private key")
    ca = load_cert(certs.ca_cert)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity.uri)]
    if region:
        names.append(x509.UniformResourceIdentifier(f"{REGION_URI}{region}"))
    for host in server_names:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    usage = ExtendedKeyUsageOID.SERVER_AUTH if identity.kind is IdentityKind.SERVER else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.name),
                                 *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups),
                                 x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, identity.kind.value)]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(certs.key(identity), key)
    _write_cert(certs.cert(identity), cert)
    return certs.cert(identity)


__all__ = ["REGION_URI", "CertsDir", "Identity", "IdentityKind", "PkiError", "check_group", "check_name", "create_ca",
           "identity_of", "init_ca", "issue", "load_cert", "region_of", "server_names_of"]
