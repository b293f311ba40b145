"""Whether a usage request's `cluster` names a cluster the usage records can answer for, and which moved cluster a
provider may still name. Decisions over the members and the usage store; UsageService (usage_service.py) asks.

Why a check at all: `federator usage --cluster east-l` (a typo of east-1) answered total 0 with no word, read as
"nothing ran there" (outside billing re-test N4), while a malformed name was already INVALID_ARGUMENT naming
`cluster`. A well-formed name is an answer only if something has it: a member cluster now (one that ran nothing
answers 0, which is true), or a usage record kept, whenever it ran: a cluster gone from the federation (forgotten,
its MemberCluster deleted) keeps its history. A name neither has is INVALID_ARGUMENT naming `cluster`, with the
google.rpc.BadRequest every usage refusal carries. A record past --usage-retention is gone: its cluster's name,
once no member has it either, is refused as never known, which is what the store can vouch for.

The store is asked only when the window's answer would be zero for a name no member has now (`unknown_cluster`),
so a report on a member, or on a gone cluster that ran in the window, costs nothing more.

A provider (security/provider_usage.py) names a cluster not bound to it today only where records of that cluster
were billed to it (`billed_there`): a cluster the trust file moved to another provider stays the old provider's for
what ran before the move (outside billing re-test N1), and its `--cluster` answers those records alone.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

from federator.accounting import SqliteUsageStore, UsageRecord
from federator.jobfile import FieldProblem, shown

UNKNOWN = "no member cluster has that name, and no usage record kept does (a typo? `federator get clusters` lists " \
          "the members)"


def unknown_cluster(name: str, *, members: Container[str], window: Sequence[UsageRecord],
                    store: SqliteUsageStore) -> FieldProblem | None:
    """The problem with `name` as a usage request's cluster, or None: a member now, a cluster with a record in the
    window asked (`window`: the records the window read, of that cluster, before who may see them is applied, so the
    answer does not depend on the caller), or one with any record kept (a look-up of the store's cluster index)."""
    if not name or name in members or any(r.cluster == name for r in window) or store.has_records(name):
        return None
    return FieldProblem("cluster", f"{shown(name)}: {UNKNOWN}")


def billed_there(store: SqliteUsageStore, provider: str, cluster: str) -> bool:
    """Whether a record of `cluster` was billed to `provider` (a provider's name; "" for a certificate of the
    federation's CA, which speaks for its one cluster only and so never for a moved one)."""
    return bool(provider) and store.has_records(cluster, provider=provider)


__all__ = ["UNKNOWN", "billed_there", "unknown_cluster"]
