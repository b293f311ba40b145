"""The edge every gRPC service of the federator shares.

Every caller is authenticated (`security.auth`) and every message is size-checked before the state machine sees it;
refusals are counted by reason and never stop the federator serving anyone else. A request whose bytes do not
decode reaches the servicer as `Malformed` (DecodeGuard) so that it is refused as input, not as a crash inside gRPC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

from federator.jobfile import FieldProblem
from federator.security.audit import AuditLog
from federator.security.auth import AuthDenied, Authenticator, Peer
from federator.security.authz import Authorizer, Denied, Principal
from federator.security.delegation import ON_BEHALF_OF, ON_BEHALF_OF_GROUPS, on_behalf, requested
from federator.security.limits import RejectReason
from federator.security.pki import Identity, IdentityKind
from federator.server import vanished_peers
from federator.server.errors import Exhausted, Refused, bad_request, denied, exhausted, refused_for
from federator.server.federator import Federator


@dataclass(frozen=True, slots=True)
class Malformed:
    """A request whose bytes do not decode: handed to the servicer instead of failing inside gRPC."""

    message: str


class DecodeGuard(grpc.aio.ServerInterceptor):
    """Undecodable requests get INVALID_ARGUMENT naming the problem and are counted (reason `malformed`).

    Without it gRPC answers UNKNOWN and nothing is counted. On the agent stream
    a bad frame reaches the servicer as `Malformed`, which drops it and keeps
    the stream.
    """

    def __init__(self, on_malformed: Callable[[], None]) -> None:
        self._on_malformed = on_malformed

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer
        method = details.method

        def safe(data: bytes) -> Any:
            try:
                return decode(data)
            except Exception as exc:  # noqa: BLE001 - whatever the decoder raises, the caller sent it
                return Malformed(f"{method}: the request cannot be decoded ({type(exc).__name__}: {exc})")

        async def refuse(request: object, context: grpc.aio.ServicerContext) -> None:
            if isinstance(request, Malformed):  # a BadRequest as on every INVALID_ARGUMENT (outside fuzz QA F5); its
                self._on_malformed()  # field is "", the whole request: the decoder does not say which field it was
                await context.abort_with_status(bad_request(request.message, [FieldProblem("", request.message)]))

        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary(request: object, context: grpc.aio.ServicerContext) -> object:
                await refuse(request, context)
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(unary, safe, handler.response_serializer)
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def streaming(request: object, context: grpc.aio.ServicerContext) -> AsyncIterator[object]:
                await refuse(request, context)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(streaming, safe, handler.response_serializer)
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(handler.stream_stream, safe, handler.response_serializer)
        return handler



class Edge:
    """What every service shares: the federator, the authenticator, and refusal helpers."""

    def __init__(self, federator: Federator, auth: Authenticator | None = None, *,
                 authz: Authorizer | None = None, audit: AuditLog | None = None) -> None:
        self.fed = federator
        self.auth = auth or Authenticator(insecure=True)
        self.authz = authz or Authorizer()
        self.audit = audit or AuditLog(None)

    def rejected(self, reason: RejectReason) -> None:
        self.fed.metrics.messages_rejected.labels(reason.value).inc()

    async def deny(self, context: grpc.aio.ServicerContext, refusal: AuthDenied) -> NoReturn:
        """A credential refused: UNAUTHENTICATED (none usable) or PERMISSION_DENIED (revoked, the wrong kind), with
        an ErrorInfo saying which."""
        self.rejected(refusal.reason)
        code = grpc.StatusCode.UNAUTHENTICATED if refusal.unauthenticated else grpc.StatusCode.PERMISSION_DENIED
        reason = Refused.UNAUTHENTICATED if refusal.unauthenticated else \
            Refused.CREDENTIAL_REVOKED if refusal.reason is RejectReason.REVOKED else Refused.CREDENTIAL_KIND
        await context.abort_with_status(denied(refusal.message, reason, code=code))
        raise AssertionError("unreachable")  # context.abort raises

    async def refuse(self, context: grpc.aio.ServicerContext, rule: str, message: str, **metadata: str) -> NoReturn:
        """PERMISSION_DENIED by the policy's `rule`, with its ErrorInfo (reason, metadata["rule"], and `metadata`
        naming the object: only what the caller sent or may see)."""
        await context.abort_with_status(denied(message, refused_for(rule), metadata={"rule": rule, **metadata}))
        raise AssertionError("unreachable")  # context.abort raises

    async def user(self, context: grpc.aio.ServicerContext) -> Peer:
        peer = self.auth.user(context.auth_context(), context.invocation_metadata() or ())
        if isinstance(peer, AuthDenied):
            await self.deny(context, peer)
        return peer

    async def principal(self, context: grpc.aio.ServicerContext) -> Principal:
        """The caller as the tenancy policy sees them (user, groups, admin): the user a delegate acts for when the
        call asks for one and tenancy.delegates grants it (security/delegation.py), else the caller itself. A
        refused delegation is PERMISSION_DENIED naming rule `delegate`, and an audit line."""
        metadata = context.invocation_metadata() or ()
        peer = await self.user(context)
        who = on_behalf(self.authz, peer, metadata,
                        revoked=lambda user: self.auth.revocations.revoked(Identity(IdentityKind.USER, user), -1))
        if isinstance(who, Denied):
            asked = requested(metadata)
            user = asked[0][0][:253] if asked and asked[0] else ""
            self.audit.record("delegate", identity=self.authz.principal(peer), obj={"on_behalf_of": user},
                              result="refused", code="PERMISSION_DENIED", rule=who.rule.value, message=who.message)
            key = ON_BEHALF_OF_GROUPS if who.message.startswith(ON_BEHALF_OF_GROUPS) else ON_BEHALF_OF
            await self.refuse(context, who.rule.value, who.message, key=key, on_behalf_of=user)
        return who

    async def cluster_acts_for_no_user(self, context: grpc.aio.ServicerContext, cluster: str) -> None:
        """PERMISSION_DENIED (and a `delegate` audit line) for a cluster certificate's call that asks to act for a
        user: such a caller is served as itself, and was so silently, where docs/security.md promises a request
        to act for a user is refused, never ignored (portal re-test N7)."""
        asked = requested(context.invocation_metadata() or ())
        if asked is None:
            return
        message = (f"{ON_BEHALF_OF}: delegate: a cluster certificate (cluster {cluster[:80]}) acts for no user; "
                   f"call with the user's own certificate, or a delegate's")
        user = asked[0][0][:253] if asked[0] else ""
        self.audit.record("delegate", identity=Principal(f"cluster {cluster[:80]}", via="certificate"),
                          obj={"on_behalf_of": user}, result="refused",
                          code="PERMISSION_DENIED", rule="delegate", message=message)
        await self.refuse(context, "delegate", message, key=ON_BEHALF_OF, on_behalf_of=user)

    async def sized(self, context: grpc.aio.ServicerContext, what: str, msg: Message) -> None:
        problem = self.fed.limits.check_size(what, msg.ByteSize())
        if problem is not None:
            self.rejected(RejectReason.OVERSIZED)
            await context.abort_with_status(exhausted(problem, Exhausted.MESSAGE_TOO_LARGE))



def decode_guard(federator: Federator) -> DecodeGuard:
    """The DecodeGuard of a federator's gRPC server; with it, grpc's ERROR for a peer gone mid-write is one INFO
    line (server/vanished_peers.py)."""
    vanished_peers.install()
    return DecodeGuard(lambda: federator.metrics.messages_rejected.labels(RejectReason.MALFORMED.value).inc())
