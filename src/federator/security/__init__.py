"""Identities, certificates, authentication and input limits of a federation.

The names below load on first use (PEP 562), not with the package: the pure scheduler imports
`security/podsecurity.py`, and importing a submodule runs this file first, so eager imports here dragged
`pki.py`'s cryptography (and `auth.py`) into every process that schedules, the simulator and the benchmarks
included (review59 R5; tests/test_static_checks.py holds it).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from federator.security.auth import AuthDenied, Authenticator, Peer, RevocationList, load_tokens
    from federator.security.limits import Limits, RejectReason, TokenBucket, check_hello
    from federator.security.pki import CertsDir, Identity, IdentityKind, PkiError, identity_of, init_ca, issue

_HOMES = {
    "AuthDenied": "auth", "Authenticator": "auth", "Peer": "auth", "RevocationList": "auth", "load_tokens": "auth",
    "Limits": "limits", "RejectReason": "limits", "TokenBucket": "limits", "check_hello": "limits",
    "CertsDir": "pki", "Identity": "pki", "IdentityKind": "pki", "PkiError": "pki", "identity_of": "pki",
    "init_ca": "pki", "issue": "pki",
}

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


def __getattr__(name: str) -> Any:
    """`federator.security.Limits` and the rest, imported from their module when first asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
