"""Reconnecting to the federator: how long to wait after a stream ends, and what to say of it.

Why a module of its own: a stream that ends is not all alike. A federator restarting or a link cut is retried at
once and then with a capped exponential back-off that a working session resets (agent/backoff.py); a refusal or a
dial set up wrong does not change by retrying and is said once and retried slowly (REFUSED_BACKOFF,
agent/refusal.py); a second agent holding the cluster is waited out (agent/duplicate.py); a TLS handshake that
fails is counted by why, since the federator cannot count it. That policy reads only how a stream ended and how
many were welcomed (agent/session.py), nothing of what the streams carried.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc

from federator.agent.backoff import Backoff
from federator.agent.duplicate import DuplicateLog
from federator.agent.refusal import HandshakeFailure, Lasting, handshake_failure, handshake_hint, lasting
from federator.agent.session import UNWELCOMED, Session, StreamEnded
from federator.security.tls import TlsError, dial_hint

log = logging.getLogger("federator.agent")
REFUSED_BACKOFF = {"initial": 5.0, "factor": 2.0, "maximum": 300.0, "fast_window": 0.0}
"""The back-off after the federator refused this agent (PERMISSION_DENIED: revoked, untrusted, not its identity;
UNAUTHENTICATED; INVALID_ARGUMENT on its Hello), a dial set up wrong (agent/refusal.py), or a TLS handshake
failed by its own files outside their dates or by a CA the federator does not trust (`Reconnect._lasting_handshake`):
that does not change by retrying, so the agent retries slowly, up to every 5 minutes, to take a lifted refusal
or a renewed certificate without a restart."""
REFUSED_HANDSHAKES = 60
"""Sockets closed in the TLS handshake in a row, this agent's files in date, after which the federator is taken to
refuse its certificate (a CA it does not trust) and the agent backs off as refused: about a minute at the usual
back-off's pace. Not at once: a federator stopping mid-handshake closes sockets too, and a TCP load balancer in
front of a federator that is down may accept and close every connection; neither should cost a 5-minute wait."""


RECONNECT_WARNING_EVERY = 60.0
"""Seconds between WARNINGs of one outage's lost streams (the first is one at once; the tries between are INFO)."""


class Reconnect:
    """Opens the session's streams one after another, waiting between them as the way the last one ended says."""

    def __init__(self, session: Session, *, sleep: Callable[[float], Awaitable[None]]) -> None:
        self.session = session
        self.config = session.config
        self.metrics = session.metrics
        self.certificates = session.certificates
        self.instance = session.instance
        self.sleep = sleep  # between attempts (a test's fake clock)
        self._closed_in_handshake = 0  # sockets closed in the TLS handshake in a row, files in date
        self._next_warning = 0.0  # the session clock's time from which a lost stream is a WARNING again

    async def run(self) -> None:
        """Stream after stream, until the agent stops (or a Welcome's rule refuses its configuration)."""
        backoff = Backoff(maximum=self.config.max_backoff)
        refusals = Backoff(**REFUSED_BACKOFF)  # type: ignore[arg-type]
        refused = ""  # the lasting failure (a refusal, a misdial) as last logged at WARNING: its key
        # Refused as a second agent for the cluster (ALREADY_EXISTS):
        duplicate = DuplicateLog(log, self.session.contact.clock)
        while True:
            welcomed = self.session.sessions
            stuck: Lasting | None = None
            twin = busy = False
            try:
                await self.session.stream()
                why = "the federator closed the stream"
            except (grpc.aio.AioRpcError, StreamEnded, OSError, TlsError) as exc:
                why = _why(exc)  # TlsError: files swapped under the agent (a renewal half done): retried
                twin = isinstance(exc, grpc.aio.AioRpcError) and exc.code() is grpc.StatusCode.ALREADY_EXISTS
                busy = _busy(exc)
                if isinstance(exc, grpc.aio.AioRpcError):  # refused, or dialed wrong: said once, retried slowly
                    stuck = lasting(exc.code(), exc.details() or "", target=self.config.target,
                                    tls=self.config.tls is not None)
                    if self.session.sessions == welcomed and exc.code() is grpc.StatusCode.UNAVAILABLE:
                        failure = self._handshake_failed(exc.details() or "")
                        stuck = stuck or self._lasting_handshake(failure, exc.details() or "")
            if self.session.fatal is not None:
                raise self.session.fatal
            if self.session.sessions > welcomed:
                backoff.reset()  # that session worked: the federator is back, come back fast next time too
                refusals.reset()  # and it admitted this agent: a refusal after this is news
                refused = ""
                duplicate.reset()
                self._closed_in_handshake = 0
            if stuck is not None:
                await self._refused(why, stuck, refusals, first=stuck.key != refused)
                refused = stuck.key
                continue
            # A federator that left this stream unwelcomed is up and busy: spread the crowd out (Backoff.busy)
            delay = backoff.busy() if busy and self.session.sessions == welcomed else backoff.next()
            if twin:  # another agent holds the cluster: the usual backoff, until it has been gone for a lease
                # An answer, not silence: the placements on this member may be the other agent's; no --fence-after.
                self.session.last_contact = self.session.contact.clock()
                duplicate.refused(target=self.config.target, cluster=self.config.cluster, instance=self.instance,
                                  why=why, delay=delay)
                await self.sleep(delay)
                continue
            hint = dial_hint(why, self.config.target, tls=self.config.tls is not None) or handshake_hint(
                why, tls=self.config.tls is not None, provider=self.config.labels.get("federator.io/provider", ""),
                attempts=backoff.attempt if self.session.sessions == welcomed else 0)
            if self.session.sessions == welcomed and self.certificates is not None and self.certificates.check():
                hint = "the agent's TLS files are outside their dates (the ERROR above says which and what to do)"
            log.log(self._level(backoff.attempt), "stream to %s lost (%s); reconnecting in %.2fs (attempt %d)%s",
                    self.config.target, why, delay, backoff.attempt, f"; hint: {hint}" if hint else "")
            await self.sleep(delay)

    def _level(self, attempt: int) -> int:
        """WARNING for an outage's first lost stream and then once a RECONNECT_WARNING_EVERY, INFO for the tries
        between (outside WAN QA, W6: a 5 s outage wrote ten WARNINGs, a link flapping for 2 minutes 58, burying
        what an operator must read); every try is still a line, with its attempt number."""
        now = self.session.contact.clock()
        if attempt <= 1 or now >= self._next_warning:
            self._next_warning = now + RECONNECT_WARNING_EVERY
            return logging.WARNING
        return logging.INFO

    def _handshake_failed(self, detail: str) -> HandshakeFailure | None:
        """Count a connect that failed in the TLS handshake, by why (agent/refusal.py `HandshakeFailure`): the
        federator cannot, so this is where a provider's expired or untrusted certificate shows in a metric."""
        failure = handshake_failure(detail, tls=self.config.tls is not None,
                                    own_files_bad=lambda: self.certificates is not None and bool(
                                        self.certificates.check()))
        if failure is not None:
            self.metrics.handshake_failed(failure)
        return failure

    def _lasting_handshake(self, failure: HandshakeFailure | None, detail: str) -> Lasting | None:
        """A failed TLS handshake that retrying soon will not fix, so the agent backs off as refused (up to every
        5 minutes) and says it once (outside QA F5: an agent whose certificate had expired retried about once a
        second for ever, a WARNING each time, a handshake storm on the federator from a hundred such agents):

        - any handshake failure while this agent's own --cert or --ca is outside its dates: only renewed files fix
          it, and they are read again at every attempt (the session's credentials, and `certificates.check`);
        - the federator closing the handshake on files in date REFUSED_HANDSHAKES times in a row: its trust does not
          take this certificate (a provider CA missing from trust.yaml); a restart does not look like that."""
        if failure is None or self.certificates is None:
            self._closed_in_handshake = 0
            return None
        problem = self.certificates.check()
        if problem:
            return Lasting(f"files: {problem}", refused=False,
                           hint="this agent's TLS files are outside their dates (the ERROR above says which and what "
                                "to do); renewed files are read at every attempt, no restart needed")
        if failure is not HandshakeFailure.CERTIFICATE_REFUSED:
            self._closed_in_handshake = 0
            return None
        self._closed_in_handshake += 1
        if self._closed_in_handshake < REFUSED_HANDSHAKES:
            return None
        provider = self.config.labels.get("federator.io/provider", "")
        return Lasting(HandshakeFailure.CERTIFICATE_REFUSED.value, refused=False,
                       hint=handshake_hint(detail, tls=True, provider=provider, attempts=self._closed_in_handshake))

    async def _refused(self, why: str, stuck: Lasting, refusals: Backoff, *, first: bool) -> None:
        """The federator refused this agent, or the dial is set up wrong (agent/refusal.py): say why at WARNING
        when the reason changes (DEBUG at each retry after), and wait longer and longer (REFUSED_BACKOFF). A
        revoked agent, or one whose Hello was refused, used to retry about once a second for ever, with a WARNING
        on both sides each time."""
        delay = refusals.next()
        if first and stuck.refused:
            log.warning("the federator at %s refuses this agent (%s); retrying in %.0fs and less and less often, up "
                        "to every %gs; this is said again only if the reason changes", self.config.target, why, delay,
                        refusals.maximum)
        elif first:
            log.warning("cannot talk to the federator at %s (%s); hint: %s; retrying in %.0fs and less and less "
                        "often, up to every %gs; this is said again only if it changes", self.config.target, why,
                        stuck.hint, delay, refusals.maximum)
        else:
            log.debug("still refused by the federator (%s); retrying in %.0fs (attempt %d)", why, delay,
                      refusals.attempt)
        await self.sleep(delay)


def _busy(exc: BaseException) -> bool:
    """A stream a busy federator left unwelcomed: given up here after WELCOME_TIMEOUT, or CANCELLED by the
    federator's gRPC core for waiting unread (a federator that is down answers UNAVAILABLE instead)."""
    if isinstance(exc, StreamEnded):
        return str(exc).startswith(UNWELCOMED)
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() is grpc.StatusCode.CANCELLED


def _why(exc: BaseException | None) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) if exc else "?"


__all__ = ["REFUSED_BACKOFF", "REFUSED_HANDSHAKES", "Reconnect"]
