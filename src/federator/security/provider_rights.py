"""What a provider may do with its clusters' certificates on the cluster API beyond reading: drain its own
clusters, and end a drain it made. Pure decisions.

Why: a provider taking its cluster down for maintenance is exactly who needs a drain (server/drains.py), and its
`--maintenance` only keeps new work off (outside provider QA, F5). A provider holds its CA and its clusters'
certificates, never a user certificate, so an admins-only Drain left it to ask an admin, or to cancel tenants'
jobs it cannot even see. Rule `provider`:

- A verified cluster certificate may drain the cluster it speaks for, and any other cluster the trust file binds
  to the same provider whose CA signed it (`Trust.provider_for`, the binding every agent stream is held to). A
  certificate from the federation's CA (a cluster no provider claims) speaks for its one cluster only. Never
  another provider's cluster, nor one no provider claims: the refusal names the rule and whose the cluster is.
- It may Uncordon only a cordon that a drain of its own provider made (`Cordon.by` is the provider's `who`),
  never an admin's cordon or drain (the admin's reason stays theirs to end), and that Uncordon lifts no
  quarantine (the federator's verdict on the cluster, not the provider's to lift).
- An admin's Cordon or Drain of a cluster whose cordon a provider made takes that cordon over (server/cordons.py,
  `provider_made`): its `by` becomes the admin's, so the provider can no longer end what the admin now holds (a
  provider's drain would otherwise outlast the admin's hold on a word from the provider). The provider's drain
  goes on, under the admin's cordon. A provider's Drain never takes over an admin's cordon: it gains the drain,
  the cordon stays the admin's.

A drain by a provider is what an admin's is (surge first for serving jobs, paced, stored, audited); its `by` names
the provider and the certificate used: "provider acme (cluster acme-1)".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from federator.security.authz import Principal
from federator.security.trust import FEDERATION, Trust

RULE = "provider"

_MADE = re.compile(r"provider [a-z0-9.-]+ \(cluster [a-z0-9.-]+\)|cluster [a-z0-9.-]+")
"""`ProviderCaller.who`'s two shapes. A user name (lower-case letters, digits, '-' and '.') has no space, so no
admin's `by` (nor "kubectl", nor `anonymous`) can match."""


@dataclass(frozen=True, slots=True)
class ProviderCaller:
    """A caller holding a cluster certificate: the cluster it speaks for, and the provider whose CA signed it
    (FEDERATION, "", for the federation's own CA)."""

    cluster: str
    provider: str = FEDERATION

    @property
    def who(self) -> str:
        """The caller's name in a drain's `by` and the audit log."""
        return f"provider {self.provider} (cluster {self.cluster})" if self.provider else f"cluster {self.cluster}"

    def principal(self) -> Principal:
        """The caller as the audit log records it: no user, no group, not an admin."""
        return Principal(self.who, via="certificate")

    def made(self, by: str) -> bool:
        """Whether a cordon's `by` is a drain of this caller's provider (any of its clusters' certificates), or of
        this very cluster's certificate for the federation's own clusters."""
        if self.provider:
            return by.startswith(f"provider {self.provider} (cluster ") and by.endswith(")")
        return by == self.who


def provider_made(by: str) -> bool:
    """Whether a cordon's `by` is a provider's (any provider's, or a federation-CA cluster's own certificate), not
    an admin's: the cordon an admin's Cordon or Drain takes over (module docstring)."""
    return _MADE.fullmatch(by) is not None


def speaks_for(caller: ProviderCaller, cluster: str, trust: Trust | None) -> bool:
    """Whether `cluster` is the caller's provider's: the cluster its certificate names, or one the trust file
    binds to the provider whose CA signed it (module docstring). What a provider may drain, and whose usage it
    may read (security/provider_usage.py)."""
    if cluster == caller.cluster:
        return True
    owner, _ = trust.provider_for(cluster) if trust is not None else (None, "")
    return bool(caller.provider) and owner == caller.provider


def not_its_own(caller: ProviderCaller, cluster: str, trust: Trust | None, tried: str, *, of: str = "") -> str:
    """The refusal's words for a `cluster` the caller does not speak for (`speaks_for` is False): which clusters
    it may do what it tried to ("drain", "uncordon", "read the usage" with `of="of "`) with, and whose `cluster`
    is, naming the rule. One wording, so a provider reads the same reason from a drain and from a usage call
    (security/provider_usage.py)."""
    owner, _ = trust.provider_for(cluster) if trust is not None else (None, "")
    whose = f"the certificate of cluster {caller.cluster!r}"
    mine = f"the clusters the trust file binds to provider {caller.provider!r}" if caller.provider else \
        f"its own cluster {caller.cluster!r} (a certificate of the federation's CA speaks for that one only)"
    theirs = f"it belongs to provider {owner!r}" if owner else "no provider claims it"
    return f"{whose} may {tried} only {of}{mine}, not {of}{cluster[:80]!r}: {theirs} (rule: {RULE})"


def drain_refusal(caller: ProviderCaller, cluster: str, trust: Trust | None) -> str:
    """"" when `caller` may drain `cluster` (module docstring), else the refusal's words, naming the rule."""
    if speaks_for(caller, cluster, trust):
        return ""
    return not_its_own(caller, cluster, trust, "drain")


def uncordon_refusal(caller: ProviderCaller, cluster: str, by: str, trust: Trust | None) -> str:
    """"" when `caller` may end the cordon of `cluster` made by `by` (module docstring), else why not."""
    if not speaks_for(caller, cluster, trust):
        return not_its_own(caller, cluster, trust, "uncordon")
    if not caller.made(by):
        return (f"the certificate of cluster {caller.cluster!r} may end only a drain its provider made; cluster "
                f"{cluster!r} is cordoned by {by[:80]!r}, an admin ends that (rule: {RULE})")
    return ""


__all__ = ["RULE", "ProviderCaller", "drain_refusal", "not_its_own", "provider_made", "speaks_for",
           "uncordon_refusal"]
