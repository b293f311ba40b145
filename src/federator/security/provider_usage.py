"""Whose usage a provider may read with its clusters' certificates: its own clusters', never a tenant's names.
Pure decisions.

Why: a provider is paid for the accelerator-seconds its clusters ran, and could not read them: UsageService took
user credentials only, and a provider holds its CA and its clusters' certificates, never a user certificate
(outside billing QA F6). The network's admin had to split `--by provider` by hand and send each its part.

Rule `provider` (as for drains, security/provider_rights.py):

- A verified cluster certificate reads the usage of the clusters its provider owns: the cluster it names, and
  every cluster the trust file binds to the provider whose CA signed it (`speaks_for`, the binding its drains
  and its agents' streams are held to; judged by the trust file at the call). A certificate of the federation's
  CA, its one cluster. Records of every other cluster are left out before anything is summed.
- Grouped only by what is the provider's own: cluster, model, provider (`PROVIDER_BY`), or the total. Queue,
  user, namespace and job name a tenant and what it ran, which tenants do not show their providers (a cluster's
  `ClusterService.List` hides placement ids for the same reason), so they are refused, and so is a `queue`
  filter (its answer would tell one tenant's usage). A `cluster` filter of a cluster not its own is refused
  naming whose it is, not answered zero: zero would read as "that cluster ran nothing".

Each refusal is PERMISSION_DENIED with the rule's name and why, as a drain's.
"""

from __future__ import annotations

from federator.security.provider_rights import RULE, ProviderCaller, speaks_for
from federator.security.trust import Trust

PROVIDER_BY = frozenset({"", "cluster", "model", "provider"})
"""What a provider may group its usage by ("" = the total only): nothing that names a tenant."""


def usage_refusal(caller: ProviderCaller, *, by: str, queue: str, cluster: str, trust: Trust | None) -> str:
    """"" when `caller` may ask this of UsageService (module docstring), else the refusal's words, naming the
    rule. Only what the caller sent is named back."""
    whose = f"cluster {caller.cluster!r}'s certificate"
    if by not in PROVIDER_BY:
        return (f"{whose} may read usage by cluster, model or provider only, not by {by[:40]!r}: queues, users, "
                f"namespaces and jobs are the tenants' (rule: {RULE})")
    if queue:
        return (f"{whose} may not ask for one queue's usage ({queue[:80]!r}): queues are the tenants' "
                f"(rule: {RULE})")
    if cluster and not speaks_for(caller, cluster, trust):
        owner, _ = trust.provider_for(cluster) if trust is not None else (None, "")
        mine = f"the clusters the trust file binds to provider {caller.provider!r}" if caller.provider else \
            f"its own cluster {caller.cluster!r} (a certificate of the federation's CA speaks for that one only)"
        theirs = f"it is provider {owner!r}'s" if owner else "no provider claims it"
        return f"{whose} may read the usage only of {mine}, not of {cluster[:80]!r}: {theirs} (rule: {RULE})"
    return ""


__all__ = ["PROVIDER_BY", "usage_refusal"]
