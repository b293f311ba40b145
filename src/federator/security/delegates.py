"""The policy's `tenancy.delegates`: which identities may act on behalf of which users and groups.

Why: a web portal serving many organisations' users either held a credential
per end user (thousands of certificates or tokens to issue, store, rotate and
revoke) or submitted as itself, and then every job's owner, the per-user
pending caps and byte budgets, request-id scope, visibility and usage all
collapsed onto the portal (outside portal QA, M1). As Kubernetes does with
Impersonate-User and Impersonate-Group, a caller the policy names here may
send the request metadata `x-federator-on-behalf-of` (a user) and
`x-federator-on-behalf-of-groups` (their groups), and the call then runs as
that user with those groups (`security.delegation`)::

    tenancy:
      delegates:
        portal:                       # the delegate: a user certificate's name or a bearer token's name
          users: ["*"]                # whom it may act for: names or shell patterns (* and ?); "*": anyone
          groups: [acme, "org-*"]     # the groups it may say they are in (names or patterns); none if absent
          admins: false               # may it act for a member of tenancy.admins? (default false)
          maxPendingJobs: 5000        # its budget: pending jobs of everyone it acts for, together
          maxUnfinishedBytes: 1073741824   # and their unfinished jobs' spec bytes, together

A delegate's budget (portal re-test N2): every per-user cap counts the user a
job is for, and a delegate whose `users` admit "*" may name new users at will,
so per-user caps alone bounded it by nothing but the federator's own. Every job
it submits on anyone's behalf also counts against its budget. Unset, the
budget is one user's (--max-pending-jobs-per-user, --max-unfinished-bytes-per-user):
delegation then adds no room an identity did not have before, and an operator
who wants a portal to hold more says how much, knowingly.

This module is the rule only (parsed with the rest of the tenancy policy, so
a reloaded policy file changes it too); the decision on a call is
`security.delegation`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

_PATTERN = re.compile(r"^[a-z0-9*?]([-a-z0-9.*?]{0,251}[a-z0-9*?])?$")
FIELDS = ("admins", "groups", "maxPendingJobs", "maxUnfinishedBytes", "users")


@dataclass(frozen=True, slots=True)
class Delegate:
    """What one delegate may claim: the users it may act for and the groups it may assert for them.

    `admins`: whether it may act for a user the policy makes an admin (tenancy.admins, by the user's name or
    the groups asserted). Off by default: a portal that any end user can drive must not become an admin's
    hands because an admin's name was typed into a form; acting for one is refused, never quietly downgraded,
    so the portal learns why."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    admins: bool = False
    max_pending_jobs: int | None = None  # None: one user's (--max-pending-jobs-per-user); see `budget`
    max_unfinished_bytes: int | None = None  # None: one user's (--max-unfinished-bytes-per-user)

    def may_act_for(self, user: str) -> bool:
        return any(fnmatchcase(user, p) for p in self.users)

    def may_assert(self, group: str) -> bool:
        return any(fnmatchcase(group, p) for p in self.groups)


@dataclass(frozen=True, slots=True)
class Budget:
    """What every job a delegate submits on anyone's behalf counts against, together, and where each bound
    comes from (named in a refusal, in WhoAmI and by `federator policy check`)."""

    pending_jobs: int
    unfinished_bytes: int
    pending_source: str
    bytes_source: str


def budget(name: str, rule: Delegate | None, *, per_user_jobs: int, per_user_bytes: int) -> Budget:
    """Delegate `name`'s budget: its entry's maxPendingJobs and maxUnfinishedBytes, each else one user's cap.

    Why one user's by default, not unbounded and not the federator's: a delegate may invent users, so the
    per-user caps it would otherwise meet are fresh for every name it makes up. One user's worth is what the
    delegate's own identity could hold before it was made a delegate, so naming it in tenancy.delegates gives
    it no room by itself; a portal serving many organisations gets its budget raised on purpose."""
    where = f"tenancy.delegates.{name}"
    jobs = rule.max_pending_jobs if rule is not None else None
    size = rule.max_unfinished_bytes if rule is not None else None
    return Budget(
        pending_jobs=jobs if jobs is not None else per_user_jobs,
        unfinished_bytes=size if size is not None else per_user_bytes,
        pending_source=f"{where}.maxPendingJobs" if jobs is not None else
        f"{where}.maxPendingJobs unset: one user's, --max-pending-jobs-per-user",
        bytes_source=f"{where}.maxUnfinishedBytes" if size is not None else
        f"{where}.maxUnfinishedBytes unset: one user's, --max-unfinished-bytes-per-user")


def _count(value: Any, where: str, bad: list[str]) -> int | None:
    """A positive whole number, or None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        bad.append(f"{where}: must be a whole number of at least 1, got {value!r}"[:200])
        return None
    return value


def _patterns(value: Any, where: str, bad: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        bad.append(f"{where}: must be a list of names or patterns (* and ?), got {value!r}"[:200])
        return ()
    for v in value:
        if not _PATTERN.match(v):
            bad.append(f"{where}: {v[:80]!r} is not a name or pattern: lower-case letters, digits, '-', '.', and "
                       "the wildcards * and ?")
    return tuple(value)


def delegates_from_document(raw: Any, bad: list[str]) -> dict[str, Delegate]:
    """`tenancy.delegates`: identity name -> {users, groups, admins, maxPendingJobs, maxUnfinishedBytes}; each
    problem appended to `bad`, naming the field."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        bad.append("tenancy.delegates: must map identity names to {users, groups, admins}")
        return {}
    out: dict[str, Delegate] = {}
    for name, body in raw.items():
        where = f"tenancy.delegates.{name}"
        if not isinstance(body, Mapping):
            bad.append(f"{where}: must be a mapping {{users, groups, admins}}")
            continue
        for key in body:
            if key not in FIELDS:
                bad.append(f"{where}.{key}: is not a known field (known: {', '.join(FIELDS)})")
        users = _patterns(body.get("users"), f"{where}.users", bad)
        if not users:
            bad.append(f"{where}.users: must name at least one user or pattern (\"*\" for anyone): a delegate "
                       "for nobody is a mistake")
        admins = body.get("admins", False)
        if not isinstance(admins, bool):
            bad.append(f"{where}.admins: must be true or false, got {admins!r}"[:200])
            admins = False
        out[str(name)] = Delegate(users, _patterns(body.get("groups"), f"{where}.groups", bad), admins,
                                  max_pending_jobs=_count(body.get("maxPendingJobs"), f"{where}.maxPendingJobs", bad),
                                  max_unfinished_bytes=_count(body.get("maxUnfinishedBytes"),
                                                              f"{where}.maxUnfinishedBytes", bad))
    return out


__all__ = ["Budget", "Delegate", "budget", "delegates_from_document"]
