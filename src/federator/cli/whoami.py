"""`federator whoami`: who the federator takes you to be, what you may use, and what it serves.

    federator whoami
    federator whoami -o json
    federator whoami --user portal --as alice --as-group acme    # what alice may do through the portal

The answer is IdentityService.WhoAmI's: the user and groups the federator
read from your certificate or token (and the policy's groups), your role
(admin, user or provider), the declared queues you may submit to with the
namespaces their jobs go in, and the federator's version and API features.
`--as`/`--as-group` send the delegation metadata (x-federator-on-behalf-of),
which the policy's tenancy.delegates must grant to you (docs/security.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

import grpc

from federator.cli.calls import CALL_TIMEOUT, DEFAULT_SERVER, fail
from federator.cli.certs import add_tls_arguments, client_options
from federator.listen import server_address

if TYPE_CHECKING:
    from federator.security.tls import ClientOptions

ROLES = {0: "unknown", 1: "user", 2: "admin", 3: "provider"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    w = sub.add_parser("whoami", help="who the federator takes you to be, your queues, its version and features")
    w.add_argument("--as", dest="as_user", default="", metavar="USER",
                   help="act on behalf of USER (your identity must be in the policy's tenancy.delegates)")
    w.add_argument("--as-group", action="append", default=[], metavar="GROUP",
                   help="a group USER is in, as a delegate asserts it (repeatable; needs --as)")
    w.add_argument("-o", "--output", choices=["text", "json"], default="text")
    w.add_argument("--server", default=DEFAULT_SERVER, type=server_address,
                   help="federator gRPC address (default %(default)s)")
    add_tls_arguments(w, role="client")
    w.set_defaults(func=_whoami)


def delegation_metadata(user: str, groups: list[str]) -> tuple[tuple[str, str], ...]:
    """The request metadata that asks to act for `user` with `groups` (security/delegation.py)."""
    from federator.security.delegation import ON_BEHALF_OF, ON_BEHALF_OF_GROUPS

    out: tuple[tuple[str, str], ...] = ((ON_BEHALF_OF, user),) if user else ()
    return out + ((ON_BEHALF_OF_GROUPS, ",".join(groups)),) if groups else out


def fetch(opts: ClientOptions, metadata: tuple[tuple[str, str], ...] = ()) -> object:
    """IdentityService.WhoAmI over a fresh channel (raises grpc.RpcError)."""
    from federator.api.v1 import identity_pb2, identity_pb2_grpc

    with opts.channel() as ch:
        return identity_pb2_grpc.IdentityServiceStub(ch).WhoAmI(identity_pb2.WhoAmIRequest(), metadata=metadata,
                                                                timeout=CALL_TIMEOUT)


def render(resp: object, *, output: str) -> str:
    from federator.api.v1 import identity_pb2

    assert isinstance(resp, identity_pb2.WhoAmIResponse)
    doc = {"user": resp.user, "groups": list(resp.groups), "via": resp.via, "role": ROLES.get(resp.role, "unknown"),
           "actor": resp.actor,
           "queues": [{"name": q.name, "namespaces": list(q.namespaces), "pendingJobs": _held(q, "pending_jobs"),
                       "maxPriority": q.max_priority, "maxRunSeconds": q.max_run_seconds} for q in resp.queues],
           "anyQueue": resp.any_queue, "version": resp.version, "features": list(resp.features),
           "limits": {name: held for key, name in _LIMITS if (held := _held(resp, key)) is not None}}
    if output == "json":
        return json.dumps(doc, indent=2)
    queues = ", ".join(f"{q.name} ({', '.join(q.namespaces)})" if q.namespaces else q.name for q in resp.queues)
    if resp.any_queue:
        queues = f"{queues}, and queues nobody declared" if queues else "any queue"
    lines = [f"user:     {resp.user}" + (f" (acting through {resp.actor})" if resp.actor else ""),
             f"groups:   {', '.join(resp.groups) or '-'}",
             f"role:     {doc['role']} (via {resp.via})",
             f"queues:   {queues or '-'}",
             *(f"  {q.name}: {_said(q, 'pending_jobs')} pending in the queue; priority up to {q.max_priority}; "
               + (f"runs up to {q.max_run_seconds}s" if q.max_run_seconds else "no run-time bound")
               for q in resp.queues),
             *(f"limit:    {_said(resp, key)} {what}" for key, what in _SAID if _held(resp, key) is not None),
             f"server:   federator {resp.version}",
             f"features: {', '.join(resp.features)}"]
    return "\n".join(lines)


_LIMITS = (("user_pending_jobs", "userPendingJobs"), ("user_unfinished_bytes", "userUnfinishedBytes"),
           ("delegate_pending_jobs", "delegatePendingJobs"), ("delegate_unfinished_bytes", "delegateUnfinishedBytes"))
_SAID = (("user_pending_jobs", "of your pending jobs (all queues)"),
         ("user_unfinished_bytes", "bytes of your unfinished jobs' specs"),
         ("delegate_pending_jobs", "pending jobs the delegate submitted for anyone (its budget)"),
         ("delegate_unfinished_bytes", "bytes of the delegate's unfinished jobs (its budget)"))


def _held(msg: object, field: str) -> dict[str, object] | None:
    """A SubmitLimit field as JSON ({limit, used, source}), None when the server did not set it (an older one)."""
    if not msg.HasField(field):  # type: ignore[attr-defined]
        return None
    held = getattr(msg, field)
    return {"limit": held.limit, "used": held.used, "source": held.source}


def _said(msg: object, field: str) -> str:
    held = _held(msg, field)
    return "?" if held is None else f"{held['used']} of {held['limit']}"


def _whoami(args: argparse.Namespace) -> int:
    from federator.security.tls import TlsError

    if args.as_group and not args.as_user:
        print("federator whoami: --as-group: needs --as USER", file=sys.stderr)
        return 2
    try:
        opts = client_options(args)
    except (ValueError, TlsError) as exc:
        print(f"federator whoami: {exc}", file=sys.stderr)
        return 2
    try:
        resp = fetch(opts, delegation_metadata(args.as_user, args.as_group))
    except grpc.RpcError as err:
        return fail(err, args)
    print(render(resp, output=args.output))
    return 0


__all__ = ["delegation_metadata", "fetch", "register", "render"]
