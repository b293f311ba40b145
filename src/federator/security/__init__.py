"""Identities, certificates, authentication and input limits of a federation."""

from federator.security.auth import AuthDenied, Authenticator, Peer, RevocationList, load_tokens
from federator.security.limits import Limits, RejectReason, TokenBucket, check_hello
from federator.security.pki import CertsDir, Identity, IdentityKind, PkiError, identity_of, init_ca, issue

__all__ = [
    "AuthDenied",
    "Authenticator",
    "CertsDir",
    "Identity",
    "IdentityKind",
    "Limits",
    "Peer",
    "PkiError",
    "RejectReason",
    "RevocationList",
    "TokenBucket",
    "check_hello",
    "identity_of",
    "init_ca",
    "issue",
    "load_tokens",
]
