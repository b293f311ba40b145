"""Provider maintenance: the provider operating a member cluster takes it out of scheduling itself.

Why: an outside provider (the role `federator certs provider` is built for) holds its CA and its clusters'
certificates, nothing else. Cordoning took a federation admin (server/cordons.py), so a provider about to upgrade
drivers had only worse levers: cordon every Kubernetes node (the federator kept placing there until the agent
refused each launch), stop the agent (Lost, and its jobs placed again while the old copies ran on), or delete
workloads by hand (outside provider QA, F5).

Decided: the cluster's own agent asks for it, in every capacity report (agent.proto `CapacityReport.maintenance`,
set by `federator agent --maintenance REASON`; with the agent chart, in its `extraArgs`). Why the agent and not a
provider identity calling `federator cordon`: the agent stream is already authenticated as that one cluster (its
certificate, bound to its provider by the trust file), so a provider can ask this for its own clusters and for no
other, and no new kind of credential, rule or trust-file field was needed. A provider CA still certifies no users,
and nothing here touches a job: what runs there stays, exactly as under an admin's cordon.

What it does is a cordon's: the cluster gets no new work (the scheduling snapshot shows it Cordoned, and waiting
jobs say so), what it runs stays, its agent stays connected. An admin's cordon and the provider's maintenance are
independent: either keeps the cluster out, an admin's `uncordon` ends only the admin's, and the cluster takes work
again once neither holds. It is not stored: the agent says it again in every report, so a federator that restarts
learns it from the first report (and the cluster takes no work before that report anyway). The first report
without it ends it. A report the federator refuses as implausible (trust.yaml's maxAccelerators) still carries it:
a provider can put a cluster whose capacity is frozen into maintenance too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from federator.model.cordon import Cordon
from federator.termtext import visible

log = logging.getLogger("federator.server")

MAX_MAINTENANCE_CHARS = 256
"""Of the provider's reason, what is kept (as an admin's cordon reason): a line an operator reads."""
PROVIDER_SOURCE = "provider"
"""`Cordon.by` of a provider's maintenance when the cluster names no provider: who asked for it."""


def who_asked(provider: str) -> str:
    """The `Cordon.by` of a provider's maintenance: 'provider NAME', or 'provider' when the cluster has none."""
    return f"{PROVIDER_SOURCE} {provider}" if provider else PROVIDER_SOURCE


class Maintenance:
    """The clusters whose agents report maintenance, by cluster: the provider's words and since when.

    `on_release` is told of a cluster whose maintenance ended while no admin's cordon holds it: it takes work
    again, so jobs parked for want of room come back (as after an uncordon)."""

    __slots__ = ("_held", "cordoned_by_admin", "on_release")

    def __init__(self, *, on_release: Callable[[str], None] = lambda cluster: None,
                 cordoned_by_admin: Callable[[str], bool] = lambda cluster: False) -> None:
        self._held: dict[str, Cordon] = {}
        self.on_release = on_release
        self.cordoned_by_admin = cordoned_by_admin

    def get(self, cluster: str) -> Cordon | None:
        return self._held.get(cluster)

    def names(self) -> frozenset[str]:
        return frozenset(self._held)

    def reported(self, cluster: str, reason: str, *, provider: str, now: float) -> bool:
        """What a report of `cluster` says (`reason` "": no maintenance); True when that changed anything.
        The first report that asks keeps its time; a new reason replaces the words, not the time."""
        words = visible(reason.strip()[:MAX_MAINTENANCE_CHARS])
        held = self._held.get(cluster)
        if not reason.strip():
            if held is None:
                return False
            del self._held[cluster]
            log.warning("cluster %s: its provider ended maintenance (%s)%s", cluster, held.reason,
                        "; it is still cordoned by an admin" if self.cordoned_by_admin(cluster)
                        else "; it takes new work again")
            if not self.cordoned_by_admin(cluster):
                self.on_release(cluster)
            return True
        if held is not None and held.reason == words:
            return False
        self._held[cluster] = Cordon(who_asked(provider), held.at if held is not None else now, words)
        if held is None:
            log.warning("cluster %s: in maintenance by its %s: %s; it takes no new work until its agent stops "
                        "asking (what it runs stays)", cluster, who_asked(provider), words)
        return True

    def forget(self, cluster: str) -> None:
        """A forgotten cluster's (server/leases.py): an agent that comes back says it again."""
        self._held.pop(cluster, None)


__all__ = ["MAX_MAINTENANCE_CHARS", "PROVIDER_SOURCE", "Maintenance", "who_asked"]
