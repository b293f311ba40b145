"""Member clusters an operator took out of scheduling: cordoned, as `kubectl cordon` takes a node out.

Why: a national network's members are maintained, upgraded and investigated by their providers, and before
this an operator's only ways to keep new work off a member were to stop its agent (its jobs then aged to Lost
and were placed again) or to edit the trust file. A quarantine (server/quarantine.py) could not be ended early
at all but by a restart. Now:

- `federator cordon CLUSTER --reason TEXT` (gRPC `ClusterService.Cordon`; in Kubernetes mode also
  `spec.cordoned: true` on the MemberCluster): the cluster gets no new work. What it runs stays, its agent stays
  connected and reports as before; a job's retry, a scale-up and a failover go elsewhere. The scheduling
  snapshot shows it Cordoned, so the filter that keeps work off any cluster not Ready says why.
- `federator uncordon CLUSTER` ends the cordon and any quarantine of the cluster: it takes new work at once.

Admins only (security/authz.py `admin`), audited. A cordon is kept in the store, so it outlives a restart (the
`cordons` table of the SQLite file; in Kubernetes mode the MemberCluster's spec, which `kubectl` may set too), and
a cluster may be cordoned before its agent has connected to this federator: "never place on the new provider's
cluster until we have looked at it". It names who, when and why, shown by `federator get clusters`.

A maintenance window (`federator cordon CLUSTER --from T --until T`, server/maintenance_windows.py) is a cordon
held here too, in force only from its start until its end: `names` and `since` speak of cordons in force,
`ahead` of windows still to come (the scheduler's MaintenanceWindow filter), and `end_windows` forgets those over.

A drain (`federator drain`, server/drains.py) is held here too, as part of the cordon it needs: stored with it,
ended by the same Uncordon.

A provider may drain its own clusters, and end those drains (security/provider_rights.py). An admin's Cordon or
Drain of a cluster whose cordon a provider made takes it over (`takes_over`): the cordon's who, when and why
become the admin's, stored as any cordon is, so the provider's Uncordon is refused from then on; the provider's
drain goes on under it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Protocol

from federator.model.cordon import Cordon, Drain
from federator.security.limits import valid_cluster_name
from federator.security.provider_rights import provider_made
from federator.server.maintenance import Maintenance
from federator.timestamps import LATEST, time_problem, utc_seconds

log = logging.getLogger("federator.server")

MAX_REASON = 256
"""Characters of a cordon's reason at most: a line an operator reads in `get clusters`, not a document."""


class CordonError(ValueError):
    """A cordon request that cannot be taken: `field` is the request field at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class CordonStore(Protocol):
    """Where cordons are kept: the SQLite file (store/cordons.py) or the MemberClusters (backends/kube)."""

    def put(self, cluster: str, cordon: Cordon | None) -> None:
        """Keep `cordon` for `cluster`, or forget the cluster's (None); raise if it could not be kept."""

    def load(self) -> Mapping[str, Cordon]: ...


def checked(cluster: str, reason: str = "") -> tuple[str, str]:
    """A request's cluster name and reason, or CordonError naming the field."""
    if not cluster:
        raise CordonError("cluster", "must not be empty")
    if not valid_cluster_name(cluster):  # as an agent's Hello must give it
        raise CordonError("cluster", f"{cluster[:80]!r} is not a member cluster's name (lower-case letters, "
                                     "digits, '-' and '.', at most 63)")
    if len(reason) > MAX_REASON:
        raise CordonError("reason", f"at most {MAX_REASON} characters, got {len(reason)}")
    if any(not ch.isprintable() for ch in reason):
        raise CordonError("reason", "must be one line of printable text")
    return cluster, reason.strip()


def window_words(cordon: Cordon) -> str:
    """When `cordon` keeps new work off its cluster, as a log line ends."""
    if not (cordon.window_from or cordon.window_until):
        return "it takes no new work until uncordoned"
    until = f"until {utc_seconds(cordon.window_until)}" if cordon.window_until else "until uncordoned"
    return (f"a maintenance window from {utc_seconds(cordon.began())} {until}: before it, only jobs whose run bound "
            "ends by its start are placed there")


def loaded(cluster: str, cordon: Cordon) -> Cordon:
    """`cordon` as the store held it, with a window time no request may send now (past 9999-12-31, not finite,
    negative: a 0.14.0 federator stored one, outside fuzz QA F1) read as 9999-12-31T23:59:59Z, said at ERROR with
    the fix. Decided: clamped, not dropped (the admin did ask for a cordon; a window from year 59009 reads as a
    window never begun, one until then as a cordon until uncordoned), so a restart comes up and every cycle runs."""
    times = {"window_from": cordon.window_from, "window_until": cordon.window_until}
    for field, value in list(times.items()):
        if (problem := time_problem(value)) is not None:
            times[field] = LATEST
            log.error("cluster %s: the stored cordon's %s %s; read as %s. Fix: `federator uncordon %s`, then cordon "
                      "it again with the window meant (Unix seconds)", cluster, field, problem, utc_seconds(LATEST),
                      cluster)
    return replace(cordon, window_from=times["window_from"], window_until=times["window_until"])


def takes_over(held: Cordon, by: str) -> bool:
    """Whether a cordon or drain asked for by `by` replaces the cordon `held` rather than finding it in place: an
    admin's over a provider's (security/provider_rights.py). Else a provider could Uncordon, and so end, the hold
    an admin meant to keep; a provider's never over an admin's, nor one provider's over another's."""
    return provider_made(held.by) and not provider_made(by)


class Cordons:
    """The cordoned clusters, as their store holds them: a change is stored before it holds (a cordon the store
    refused is not half taken), and `sync` takes the store's view when someone else changed it (kubectl).

    `maintenance` holds the providers' own cordons, asked for by their agents (server/maintenance.py): `names`
    is every cluster either keeps out; `get` is an admin's cordon alone, which `uncordon` ends."""

    __slots__ = ("_held", "changes", "clock", "maintenance", "on_release", "store")

    def __init__(self, store: CordonStore | None = None, *, on_release: Callable[[str], None] = lambda cluster: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store: CordonStore | None = None
        self.clock = clock  # the federator's: when a maintenance window is in force
        self._held: dict[str, Cordon] = {}
        self.changes = 0  # this federator's own changes, so that a `sync` read before one does not undo it
        self.on_release = on_release  # a cluster takes work again: jobs parked for want of room come back
        self.maintenance = Maintenance(on_release=lambda cluster: self.on_release(cluster),
                                       cordoned_by_admin=self._in_force)
        if store is not None:
            self.attach(store)

    def attach(self, store: CordonStore, *, load: bool = True) -> None:
        """Keep cordons in `store` from now on, and (`load`) hold what it holds."""
        self.store = store
        if load:
            self._held = {name: loaded(name, cordon) for name, cordon in store.load().items()}
            for name, cordon in sorted(self._held.items()):
                log.warning("cluster %s is %s; %s", name, cordon.describe(), window_words(cordon))

    def _in_force(self, cluster: str) -> bool:
        held = self._held.get(cluster)
        return held is not None and held.in_force(self.clock())

    def held(self) -> dict[str, Cordon]:
        return dict(self._held)

    def get(self, cluster: str) -> Cordon | None:
        return self._held.get(cluster)

    def names(self) -> frozenset[str]:
        """Every cluster that takes no new work for a cordon: an admin's, or its provider's maintenance."""
        now = self.clock()
        return frozenset(name for name, cordon in self._held.items() if cordon.in_force(now)) | \
            self.maintenance.names()

    def ahead(self) -> dict[str, float]:
        """Each cluster's maintenance window still to come: when it begins (the MaintenanceWindow filter's T)."""
        now = self.clock()
        return {name: cordon.window_from for name, cordon in self._held.items() if cordon.ahead(now)}

    def since(self) -> dict[str, float]:
        """When each cordoned cluster's cordon began (the earlier of an admin's and its provider's): an admin's is
        stored, so the time outlives a restart (FederatorClusterCordonedLong counts from it, not from the last
        restart: a `for: 24h` restarted with every federator restart, SRE re-test F7)."""
        now = self.clock()  # a window counts from its start, not from when it was asked
        out = {name: cordon.began() for name, cordon in self._held.items() if cordon.in_force(now)}
        for name in self.maintenance.names():
            held = self.maintenance.get(name)
            if held is not None:
                out[name] = min(out.get(name, held.at), held.at)
        return out

    async def cordon(self, cluster: str, cordon: Cordon) -> bool:
        """Cordon `cluster`, stored first (off the event loop: a SQLite fsync, or a MemberCluster patch); False
        when it was cordoned already (the first cordon's words stay, so a retried call changes nothing), unless
        `cordon` takes the one held over (`takes_over`): then its words replace the provider's, and the
        provider's drain, if any, goes on under them (a drain holds now: no window). A maintenance window held is
        replaced by a cordon with another window, or none (the maintenance moved, or is now); a cordon in force
        with no window stays, whatever window is asked (uncordon it first)."""
        held = self._held.get(cluster)
        if held is not None and not takes_over(held, cordon.by) and (
                not (held.window_from or held.window_until) or
                (held.window_from, held.window_until) == (cordon.window_from, cordon.window_until)):
            return False
        if held is not None and held.drain is not None:
            cordon = replace(cordon, drain=held.drain, window_from=0.0, window_until=0.0)
        if self.store is not None:
            await asyncio.to_thread(self.store.put, cluster, cordon)
        now = self._held.get(cluster)
        if now is not None and now is not held:  # another call cordoned it meanwhile: the first stays
            return False
        self._held[cluster] = cordon
        self.changes += 1
        log.warning("cluster %s %s%s; %s", cluster, cordon.describe(),
                    f" (taking over the cordon of {held.by})" if held is not None else "", window_words(cordon))
        return True

    def draining(self) -> dict[str, Drain]:
        """The clusters an admin's drain holds, with the drain (server/drains.py)."""
        return {name: cordon.drain for name, cordon in self._held.items() if cordon.drain is not None}

    async def drain(self, cluster: str, drain: Drain) -> tuple[bool, Cordon]:
        """Drain `cluster`: cordon it with `drain` (a cordon that holds keeps its words and gains the drain; else
        the cordon is the drain's), stored first. (False, the cordon) when a drain held already: the first drain's
        words stay, so a retried call changes nothing. An admin's drain takes a provider's cordon over
        (`takes_over`): the cordon becomes the admin's words, and a drain that held goes on (its jobs name it)."""
        held = self._held.get(cluster)
        over = held is not None and takes_over(held, drain.by)
        if held is not None and held.drain is not None and not over:
            return False, held
        if held is None or over or held.window_from or held.window_until:  # the cordon is the drain's words (a
            # provider's drain taken over goes on; a maintenance window held becomes a cordon now, with no end)
            cordon = Cordon(drain.by, drain.at, drain.reason, (held.drain if held is not None else None) or drain)
        else:
            cordon = replace(held, drain=drain)
        if self.store is not None:
            await asyncio.to_thread(self.store.put, cluster, cordon)
        now = self._held.get(cluster)
        if now is not None and now is not held and now.drain is not None:  # drained meanwhile: the first stays
            return False, now
        self._held[cluster] = cordon
        self.changes += 1
        if over and held is not None:
            log.warning("cluster %s %s, taking over the cordon of %s; its jobs are placed elsewhere, and it takes "
                        "no new work until uncordoned", cluster, cordon.describe(), held.by)
        else:
            log.warning("cluster %s %s; its jobs are placed elsewhere, and it takes no new work until uncordoned",
                        cluster, drain.describe())
        return True, cordon

    async def uncordon(self, cluster: str) -> Cordon | None:
        """End the cluster's cordon, stored first; the cordon that held, if one did."""
        held = self._held.get(cluster)
        if held is None:
            return None
        if self.store is not None:
            await asyncio.to_thread(self.store.put, cluster, None)
        if self._held.pop(cluster, None) is None:  # another call ended it meanwhile
            return None
        self.changes += 1
        still = self.maintenance.get(cluster)
        log.warning("cluster %s uncordoned; %s", cluster, "it takes new work again" if still is None else
                    f"its provider still has it in maintenance ({still.reason}): no new work until that ends")
        if still is None:
            self.on_release(cluster)
        return held

    async def end_windows(self) -> list[str]:
        """Forget the maintenance windows that are over, each stored first: their clusters take new work again
        (`on_release`), unless their provider has them in maintenance. The clusters, in order."""
        now, ended = self.clock(), []
        for name, cordon in sorted(self._held.items()):
            if not cordon.over(now):
                continue
            if self.store is not None:
                await asyncio.to_thread(self.store.put, name, None)
            if self._held.get(name) is not cordon:  # changed meanwhile (a new window, an uncordon)
                continue
            del self._held[name]
            self.changes += 1
            ended.append(name)
            still = self.maintenance.get(name)
            log.warning("cluster %s: its maintenance window ended at %s (%s); %s", name,
                        utc_seconds(cordon.window_until), cordon.describe(), "it takes new work again"
                        if still is None else "its provider still has it in maintenance: no new work until that ends")
            if still is None:
                self.on_release(name)
        return ended

    def sync(self, current: Mapping[str, Cordon], *, read_at: int) -> bool:
        """The store's cordons as someone else left them (a MemberCluster's spec edited with kubectl), read when
        `changes` was `read_at`; False, and nothing taken, if this federator changed one since (the read may
        predate that change, and would undo it until the next read)."""
        if read_at != self.changes:
            return False
        ended = set(self._held) - set(current)
        for name in set(current) - set(self._held):
            log.warning("cluster %s %s (its MemberCluster says so); it takes no new work until uncordoned",
                        name, current[name].describe())
        for name, cordon in current.items():
            was = self._held.get(name)
            if cordon.drain is not None and (was is None or was.drain is None):
                log.warning("cluster %s %s (its MemberCluster says so); its jobs are placed elsewhere", name,
                            cordon.drain.describe())
        self._held = dict(current)
        for name in sorted(ended):
            still = self.maintenance.get(name)
            log.warning("cluster %s uncordoned (its MemberCluster says so); %s", name, "it takes new work again"
                        if still is None else "its provider still has it in maintenance: no new work until that ends")
            if still is None:
                self.on_release(name)
        return True


__all__ = ["MAX_REASON", "Cordon", "CordonError", "CordonStore", "Cordons", "Drain", "checked", "takes_over"]
