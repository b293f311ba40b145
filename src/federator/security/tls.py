"""TLS material for a process: which files it reads, and the gRPC credentials made from them.

The federator, its agents and the CLI all use the same shape: the CA every
peer must chain to, this process's certificate and key. The CLI may use a
bearer token instead of a client certificate (on the federator's token
listener).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from federator.security.pki import CertsDir, Identity, IdentityKind


class TlsError(ValueError):
    """TLS material that cannot be used; the message names the file or flag."""


FRESH_CONNECTION = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_reconnect_backoff_ms", 1_000)]
"""Channel options: every channel dials anew, when its owner's back-off says (an agent's session, a CLI
retry). gRPC shares a connection (subchannel) among channels to one address, with its own reconnect back-off
(1 s growing to 120 s): a new channel inherited the last one's refused connection, and its calls failed at
once with that cached error until the shared back-off ran out. After a 9 s outage an agent came back 5.6 s
after the federator did; its log said "Connection refused" once a second all that time (plaintext channels:
with mTLS, each channel's own credentials kept its connection apart)."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The CA to trust, and this process's certificate and key (None for a token client)."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    @classmethod
    def from_dir(cls, certs: CertsDir, identity: Identity) -> TlsFiles:
        return cls(certs.ca_cert, certs.cert(identity), certs.key(identity))

    def read(self) -> tuple[bytes, bytes | None, bytes | None]:
        def one(what: str, path: Path | None) -> bytes | None:
            if path is None:
                return None
            try:
                return path.read_bytes()
            except OSError as exc:
                raise TlsError(f"--{what}: cannot read {path}: {exc.strerror or exc}") from exc

        ca = one("ca", self.ca)
        assert ca is not None
        cert, key = one("cert", self.cert), one("key", self.key)
        _check_pem(self, ca, cert, key)
        return ca, cert, key

    def channel_credentials(self) -> grpc.ChannelCredentials:
        ca, cert, key = self.read()
        if (cert is None) != (key is None):
            raise TlsError("--cert and --key: give both or neither")
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    def server_credentials(self, *, require_client_auth: bool = True,
                           client_roots: bytes | None = None) -> grpc.ServerCredentials:
        """`client_roots`: the CAs client certificates may chain to (default: --ca; with provider CAs, the
        trust bundle)."""
        ca, cert, key = self.read()
        if cert is None or key is None:
            raise TlsError("--cert and --key: the federator needs its serving certificate and key")
        roots = client_roots or ca
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=roots if require_client_auth else None,
                                           require_client_auth=require_client_auth)

    def served(self, client_roots: bytes | None = None) -> ServedTls:
        """This server's key and certificate, and the CAs client certificates may chain to (default: --ca; with
        provider CAs, the trust bundle), as a holder the running server's credentials follow."""
        ca, cert, key = self.read()
        if cert is None or key is None:
            raise TlsError("--cert and --key: the federator needs its serving certificate and key")
        return ServedTls(key, cert, client_roots or ca)


class ServedTls:
    """What the federator's listeners present and trust, replaceable while they serve: its key and certificate
    (renewed: security/serving_reload.py) and the client CAs (a reloaded trust file, or a rotated --ca).

    gRPC asks at every handshake (`credentials`), so a change is served from the next connection on;
    connections already open keep their handshake (the federator ends the agent streams a new trust refuses,
    server/edge.py). One tuple holds all three, swapped whole: gRPC's thread never pairs a new certificate
    with an old key."""

    __slots__ = ("_material",)

    def __init__(self, key: bytes, cert: bytes, client_roots: bytes) -> None:
        self._material = (key, cert, client_roots)

    @property
    def pem(self) -> bytes:
        """The client CAs."""
        return self._material[2]

    @property
    def certificate(self) -> bytes:
        return self._material[1]

    @property
    def key(self) -> bytes:
        return self._material[0]

    def use_client_roots(self, pem: bytes) -> None:
        key, cert, _ = self._material
        self._material = (key, cert, pem)

    def use_pair(self, key: bytes, cert: bytes) -> None:
        self._material = (key, cert, self._material[2])

    def credentials(self, *, require_client_auth: bool = True) -> grpc.ServerCredentials:
        """Server credentials that follow this holder (`require_client_auth`: mTLS; else server TLS, for bearer
        tokens)."""
        served = [self._material]

        def config(material: tuple[bytes, bytes, bytes]) -> grpc.ServerCertificateConfiguration:
            key, cert, roots = material
            return grpc.ssl_server_certificate_configuration([(key, cert)],
                                                             root_certificates=roots if require_client_auth else None)

        def fetch() -> grpc.ServerCertificateConfiguration | None:  # on gRPC's own thread: no I/O, no await
            material = self._material
            if material is served[0]:
                return None
            served[0] = material
            return config(material)

        return grpc.dynamic_ssl_server_credentials(config(served[0]), fetch,
                                                   require_client_authentication=require_client_auth)


def _check_pem(files: TlsFiles, ca: bytes, cert: bytes | None, key: bytes | None) -> None:
    """Refuse, naming the flag and the file, TLS material gRPC would take and then fail with: a server that
    said "cannot bind" its port, an agent that retried a handshake for ever, a CLI that said "failed to
    connect". A certificate and a key that are not a pair are refused too (swapped files, a renewed
    certificate with the old key)."""
    _certificates("ca", files.ca, ca)
    leaf = _certificates("cert", files.cert, cert)[0] if cert is not None else None
    if key is None:
        return
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise TlsError(f"--key: {files.key}: not a PEM private key without a passphrase") from exc
    if leaf is not None and _public(leaf.public_key()) != _public(private.public_key()):
        raise TlsError(f"--key: {files.key} is not the key of the certificate in {files.cert} (--cert)")


def _certificates(flag: str, path: Path | None, data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TlsError(f"--{flag}: {path}: not a PEM certificate") from exc


def _public(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How a client reaches the federator: its address and credentials (or plaintext with insecure)."""

    server: str
    tls: TlsFiles | None = None
    token: str = ""
    insecure: bool = False

    def __post_init__(self) -> None:
        if self.tls is None and not self.insecure:
            raise TlsError("no TLS credentials: pass --certs-dir or --ca/--cert/--key "
                           "(or set FEDERATOR_CERTS_DIR), or --insecure for a plaintext federator")

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def channel(self) -> grpc.Channel:
        if self.insecure:
            return grpc.insecure_channel(self.server, options=FRESH_CONNECTION)
        assert self.tls is not None
        creds = self.tls.channel_credentials()
        if self.token:
            creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(self.token))
        return grpc.secure_channel(self.server, creds, options=FRESH_CONNECTION)

    def aio_channel(self) -> grpc.aio.Channel:
        if self.insecure:
            return grpc.aio.insecure_channel(self.server, options=FRESH_CONNECTION)
        assert self.tls is not None
        creds = self.tls.channel_credentials()
        if self.token:
            creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(self.token))
        return grpc.aio.secure_channel(self.server, creds, options=FRESH_CONNECTION)


def dial_hint(detail: str, server: str, *, tls: bool, token: bool = False) -> str:
    """What a failed dial's gRPC detail most likely means, for a person ('' when nothing better can be said): gRPC
    reports a TLS client meeting a plaintext server, a gRPC client meeting an HTTP one, a certificate without the
    name dialed, or a token client at the mTLS listener in words about frames, record versions and sockets.
    `token`: the client sent a bearer token and no certificate."""
    if "Misformatted domain name" in detail:  # no retry resolves it: the flag is wrong (`::::`, `host name:7070`)
        return (f"--server {server[:80]}: not an address gRPC can dial; give HOST:PORT (an IPv6 address in "
                "brackets: [::1]:7070)")
    if "Failed parsing HTTP/2" in detail:
        return f"{server} answers, but not with gRPC: is it the federator's --listen address (not its /metrics)?"
    if tls and "WRONG_VERSION_NUMBER" in detail:
        return (f"{server} answers in plaintext: that federator runs with --insecure; pass --insecure, or dial its "
                "mTLS address")
    if tls and "Hostname Verification Check failed" in detail:
        host = server_host(server)
        return (f"the federator's certificate does not name {host}; dial a name it has, or re-issue it with "
                f"`federator certs issue --dir CERTS --server --server-name {host}` (and every other name its "
                "clients and agents dial)")
    closed = "failed to connect" in detail and ("Socket closed" in detail or "Connection reset" in detail)
    if tls and token and closed:
        return (f"{server} closed a connection that brought a token and no client certificate: is it the "
                "federator's mTLS address? Tokens are served on the federator's --token-listen address")
    if not tls and closed:
        return f"{server} closed a plaintext connection: does that federator want mTLS (drop --insecure)?"
    return ""


def server_host(server: str) -> str:
    """The host of a HOST:PORT (an IPv6 literal without its brackets)."""
    host = server.rsplit(":", 1)[0] if server.count(":") == 1 or server.startswith("[") else server
    return host.removeprefix("[").removesuffix("]")


def user_files(certs: CertsDir, user: str = "admin") -> TlsFiles:
    return TlsFiles.from_dir(certs, Identity(IdentityKind.USER, user))


def cluster_files(certs: CertsDir, cluster: str) -> TlsFiles:
    return TlsFiles.from_dir(certs, Identity(IdentityKind.CLUSTER, cluster))


def server_files(certs: CertsDir) -> TlsFiles:
    return TlsFiles(certs.ca_cert, certs.server_cert, certs.server_key)


__all__ = ["ClientOptions", "ServedTls", "TlsError", "TlsFiles", "cluster_files", "server_files", "user_files"]
