"""Acting on behalf of a user: the request metadata a delegate sends, and the caller the call then runs as.

A call carrying `x-federator-on-behalf-of: USER` (and optionally
`x-federator-on-behalf-of-groups: G1,G2`, the key repeatable) from a caller
that `tenancy.delegates` names (`security.delegates`) runs exactly as USER
with those groups: the owner recorded on a submitted job, the per-user caps,
the request-id scope, what it may see and manage, and whose usage it reads.
The policy's own groups of USER (tenancy.groups) count as for USER's own
calls. The principal keeps the delegate as its `actor`, which the audit log
writes beside it.

What a delegate may claim is bounded by its rule and never more: a user its
`users` do not match, a group its `groups` do not match, or (without
`admins: true`) a user the policy makes an admin is PERMISSION_DENIED naming
rule `delegate` and the field. So is the metadata from a caller no rule
names: a header silently ignored would run a portal's end users as the portal.
An insecure federator has no identities (every caller is the admin
`anonymous`), so there the headers are honoured from anyone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from federator.security.auth import Peer
from federator.security.authz import Authorizer, Denied, Principal, Rule

ON_BEHALF_OF = "x-federator-on-behalf-of"
ON_BEHALF_OF_GROUPS = "x-federator-on-behalf-of-groups"
DELEGATED_VIA = "delegation"  # the effective principal's `via`; the actor keeps its own (certificate, token)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def requested(metadata: Sequence[tuple[str, str | bytes]]) -> tuple[list[str], list[str]] | None:
    """The users and groups the call asks to act as (None: it asks nothing), as sent."""
    users: list[str] = []
    groups: list[str] = []
    sent = False  # either key, even empty: a key sent is a request, refused if it names nothing (0.7.0 review)
    for key, value in metadata:
        k = key.lower()
        if k == ON_BEHALF_OF:
            sent = True
            users.append(_text(value).strip())
        elif k == ON_BEHALF_OF_GROUPS:
            sent = True
            groups.extend(g.strip() for g in _text(value).split(",") if g.strip())
    if not sent:
        return None
    return users, groups


def _bad(field: str, problem: str) -> Denied:
    return Denied(Rule.DELEGATE, f"{field}: {Rule.DELEGATE}: {problem}")


def on_behalf(authz: Authorizer, peer: Peer, metadata: Sequence[tuple[str, str | bytes]], *,
              revoked: Callable[[str], bool] = lambda _user: False) -> Principal | Denied:
    """The principal a call runs as: the caller's own, or (metadata asking for it, and the policy granting it)
    the user it acts for, with the caller as its actor; else the refusal naming the field and the rule.

    `revoked`: whether the revocation list names a user (`user NAME`). A user revoked so is refused through a
    delegate too: revoking alice's certificates while a portal could still act for her would revoke nothing."""
    actor = authz.principal(peer)
    asked = requested(metadata)
    if asked is None:
        return actor
    users, groups = asked
    if len(users) != 1:
        return _bad(ON_BEHALF_OF, "required exactly once when x-federator-on-behalf-of-groups is sent"
                    if not users else f"sent {len(users)} times; name one user")
    user = users[0]
    if not _NAME.match(user):
        return _bad(ON_BEHALF_OF, f"{user[:80]!r} is not a user name (lower-case letters, digits, '-' and '.', "
                                  "1 to 253 characters)")
    for g in groups:
        if not _NAME.match(g):
            return _bad(ON_BEHALF_OF_GROUPS, f"{g[:80]!r} is not a group name (comma-separated names of "
                                             "lower-case letters, digits, '-' and '.')")
    asserted = frozenset(groups)
    effective = authz.principal(Peer(None, DELEGATED_VIA, name=user, groups=asserted))
    if peer.via == "insecure":
        return replace(effective, actor=actor)
    rule = authz.policy.delegates.get(actor.user)
    where = f"tenancy.delegates.{actor.user}"
    if rule is None:
        return Denied(Rule.DELEGATE, f"{ON_BEHALF_OF}: {Rule.DELEGATE}: user {actor.user!r} may not act on behalf "
                                     f"of other users: tenancy.delegates has no entry {actor.user!r}")
    if not rule.may_act_for(user):
        return Denied(Rule.DELEGATE, f"{ON_BEHALF_OF}: {Rule.DELEGATE}: {actor.user!r} may not act for user "
                                     f"{user!r}: {where}.users admits {', '.join(rule.users)}")
    refused = sorted(g for g in asserted if not rule.may_assert(g))
    if refused:
        allowed = ", ".join(rule.groups) or "no group"
        return Denied(Rule.DELEGATE, f"{ON_BEHALF_OF_GROUPS}: {Rule.DELEGATE}: {actor.user!r} may not assert "
                                     f"group(s) {', '.join(refused)}: {where}.groups admits {allowed}")
    if revoked(user):
        return Denied(Rule.DELEGATE, f"{ON_BEHALF_OF}: {Rule.DELEGATE}: user {user!r} is revoked (the revocation "
                                     f"list names 'user {user}'): nobody may act for them")
    if effective.admin and not rule.admins:
        return Denied(Rule.DELEGATE, f"{ON_BEHALF_OF}: {Rule.DELEGATE}: user {user!r} is an admin (tenancy.admins) "
                                     f"and {where}.admins is not true, so {actor.user!r} may not act for them")
    return replace(effective, actor=actor)


__all__ = ["DELEGATED_VIA", "ON_BEHALF_OF", "ON_BEHALF_OF_GROUPS", "on_behalf", "requested"]
