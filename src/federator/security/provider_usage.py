"""Whose usage a provider may read with its clusters' certificates: its own clusters', never a tenant's names.
Pure decisions.

Why: a provider is paid for the accelerator-seconds its clusters ran, and could not read them: UsageService took
user credentials only, and a provider holds its CA and its clusters' certificates, never a user certificate
(outside billing QA F6). The network's admin had to split `--by provider` by hand and send each its part.

Rule `provider` (as for drains, security/provider_rights.py):

- A verified cluster certificate reads its provider's payout: the usage records billed to the provider whose CA
  signed it (`billed_to`: each record keeps the provider its cluster had when it ran, the CA that signed its
  agent), whatever the trust file binds today. A cluster the trust file moved to another provider stays the old
  one's for what ran before the move and is the new one's after (outside billing re-test N1: judged by today's
  binding, the new provider read the old one's past payout and the old one lost it). A certificate of the
  federation's CA reads its one cluster's records. Every other record is left out before anything is summed.
- Grouped only by what is the provider's own: cluster, model, provider, region, vendor (`PROVIDER_BY`), or the
  total. Queue, user, namespace and job name a tenant and what it ran, which tenants do not show their providers
  (a cluster's `ClusterService.List` hides placement ids for the same reason), so they are refused, and so is a `queue`
  filter (its answer would tell one tenant's usage). A `cluster` filter of a cluster not its own is refused
  naming whose it is (by today's binding: `speaks_for`), not answered zero: zero would read as "that cluster
  ran nothing"; except a cluster whose records were billed to the caller's provider (a cluster the trust file
  moved away from it, N1): its `cluster` answers those records, and only those (`billed_to`).

Each refusal is PERMISSION_DENIED with the rule's name and why, as a drain's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from federator.accounting.records import UsageRecord
from federator.security.provider_rights import RULE, ProviderCaller, not_its_own, speaks_for
from federator.security.trust import Trust

PROVIDER_BY = frozenset({"cluster", "model", "provider", "region", "vendor"})
"""What a provider may group its usage by ("" = the total only): nothing that names a tenant."""


def usage_refusal(caller: ProviderCaller, *, by: Sequence[str], queue: str, cluster: str, trust: Trust | None,
                  billed_there: Callable[[str], bool] = lambda _cluster: False) -> str:
    """"" when `caller` may ask this of UsageService (module docstring), else the refusal's words, naming the
    rule. Only what the caller sent is named back. `billed_there(cluster)`: whether records of that cluster were
    billed to the caller's provider (asked only of a cluster not its own today)."""
    whose = f"the certificate of cluster {caller.cluster!r}"
    for dim in by:  # the dimensions grouped by, none for the total only
        if dim not in PROVIDER_BY:
            return (f"{whose} may read usage by cluster, model, provider, region or vendor only, not by "
                    f"{dim[:40]!r}: queues, users, namespaces and jobs are the tenants' (rule: {RULE})")
    if queue:
        return (f"{whose} may not ask for one queue's usage ({queue[:80]!r}): queues are the tenants' "
                f"(rule: {RULE})")
    if cluster and not speaks_for(caller, cluster, trust) and not billed_there(cluster):
        return not_its_own(caller, cluster, trust, "read the usage", of="of ")
    return ""


def billed_to(caller: ProviderCaller, record: UsageRecord) -> bool:
    """Whether `record` is part of `caller`'s payout (module docstring): billed to its provider, or, for a
    certificate of the federation's CA, of its one cluster."""
    if caller.provider:
        return record.provider == caller.provider
    return record.cluster == caller.cluster


__all__ = ["PROVIDER_BY", "billed_to", "usage_refusal"]
