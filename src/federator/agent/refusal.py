"""Which failed connects retrying will not fix, and what the agent says of them.

Why: an agent whose Hello the federator refused as invalid (`hello.region: 'west' is not a region of provider
'acme'`) retried about once a second for ever, a WARNING each time (3,600 refused Hellos an hour per misconfigured
member), while a PERMISSION_DENIED refusal was said once and backed off to minutes (outside QA F14). The same
for an mTLS agent dialing a plaintext federator (`WRONG_VERSION_NUMBER` every 0.1-1 s, F17). None of these
changes by retrying: an operator's fix does (the agent's flags, its certificate, the federator's trust file or
--insecure). So each is said once per reason, with what it most likely means, and retried less and less often
(reconnect.py, REFUSED_BACKOFF), which still takes a fix made on the federator's side without a restart.

Not here: ALREADY_EXISTS (another agent holds the cluster: it ends when that one goes, agent/duplicate.py), and
a closed socket or a refused connection, which a federator that is restarting gives too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import grpc

from federator.security.tls import dial_hint

REFUSING = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED})
"""A refused identity: revoked, untrusted, not the cluster it claims, or no federator:// identity."""
_HINTED = ("WRONG_VERSION_NUMBER", "Hostname Verification Check failed", "Failed parsing HTTP/2")
"""The dial mistakes `dial_hint` is sure of: the other end, its certificate or its protocol is not the one set."""


@dataclass(frozen=True, slots=True)
class Lasting:
    """A failure that retrying will not fix. `key`: what makes it the same one (said again only when it changes);
    `refused`: the federator answered and refused (else the dial itself went wrong); `hint`: what it most likely
    means, for a person ('' for a refusal, whose status says why)."""

    key: str
    refused: bool
    hint: str = ""


def lasting(code: grpc.StatusCode | None, detail: str, *, target: str, tls: bool) -> Lasting | None:
    """The failure of a stream the federator never welcomed, if retrying will not fix it."""
    if code is not None and code in REFUSING:
        return Lasting(f"{code.name}: {detail}", refused=True)
    if code is grpc.StatusCode.INVALID_ARGUMENT and detail.startswith("hello") \
            and "stream ended before" not in detail:  # that one: this agent's own side ended early, not its Hello
        return Lasting(f"{code.name}: {detail}", refused=True)
    if code is grpc.StatusCode.UNAVAILABLE and any(words in detail for words in _HINTED):
        hint = dial_hint(detail, target, tls=tls)
        if hint:
            return Lasting(hint, refused=False, hint=hint)
    return None


def handshake_hint(detail: str, *, tls: bool, provider: str, attempts: int) -> str:
    """What a socket closed again and again before any welcome most likely means to an mTLS agent: the federator
    refuses its certificate in the TLS handshake, where gRPC says only "Socket closed" (outside QA, tenants F6: a
    new provider's agent looped on it for ever, read as "federator down"). Not a lasting failure at once (a
    restarting federator closes sockets too, and its retries keep the usual back-off, up to 5 s): a hint after a
    few attempts, so a restart says nothing, and the refused back-off after REFUSED_HANDSHAKES of them in a row
    (reconnect.py `Reconnect._lasting_handshake`)."""
    if not tls or attempts < 5 or "Socket closed" not in detail:
        return ""
    whose = (f"provider {provider!r} may not be in the federator's trust.yaml yet, or the federator has not "
             "taken it (it does within --trust-poll-seconds, or at once on SIGHUP); " if provider else "")
    return (f"if the federator is up, it is refusing this agent's certificate in the TLS handshake: {whose}check "
            "that the certificate's CA is one the federator trusts and that it is not expired or revoked")


class HandshakeFailure(StrEnum):
    """Why a TLS handshake with the federator failed, as the agent can tell (`federator_agent_tls_handshake_failures
    _total{reason}`). Counted here because the federator cannot count them: gRPC refuses a client certificate in
    its C core, before any Python code runs, and says so only in its own log line on stderr, with no peer."""

    CERTIFICATE_EXPIRED = "certificate_expired"
    """The socket was closed in the handshake and this agent's --cert or --ca is outside its dates (the ERROR of
    agent/certificates.py names the file): the federator refused it as expired (or not yet valid)."""
    CERTIFICATE_REFUSED = "certificate_refused"
    """Closed in the handshake, this agent's files in date: its certificate's CA is not one the federator trusts
    (a provider missing from trust.yaml), or it has no client certificate the federator takes. A federator
    closing a connection mid-handshake as it stops says the same, hence a rate over minutes, not one."""
    SERVER_UNTRUSTED = "server_untrusted"
    """This agent refused the federator's certificate: it does not chain to --ca, or it expired."""
    SERVER_NAME_MISMATCH = "server_name_mismatch"
    """The federator's certificate does not name the address dialed (--server; --server-name)."""
    NOT_TLS = "not_tls"
    """The other end does not speak TLS: a federator run with --insecure, or not a federator."""


def handshake_failure(detail: str, *, tls: bool, own_files_bad: Callable[[], bool]) -> HandshakeFailure | None:
    """The handshake failure a connect's UNAVAILABLE details say, if any (None: not a TLS one, such as a refused
    connection or a timeout). `own_files_bad` is asked only of a socket closed in the handshake."""
    if not tls:
        return None
    if "WRONG_VERSION_NUMBER" in detail:
        return HandshakeFailure.NOT_TLS
    if "Hostname Verification Check failed" in detail:
        return HandshakeFailure.SERVER_NAME_MISMATCH
    if "CERTIFICATE_VERIFY_FAILED" in detail:
        return HandshakeFailure.SERVER_UNTRUSTED
    if "Socket closed" in detail:
        return HandshakeFailure.CERTIFICATE_EXPIRED if own_files_bad() else HandshakeFailure.CERTIFICATE_REFUSED
    return None


__all__ = ["REFUSING", "HandshakeFailure", "Lasting", "handshake_failure", "handshake_hint", "lasting"]
