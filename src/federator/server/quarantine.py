"""A cluster that fails several owners' work soon after taking it, work that then runs elsewhere, gets no new work
for a while; never more than half the Ready clusters at once.

Why: a member is trusted to report its placements' outcomes, and Failed is final. Outside QA's black-hole
provider (docs/reliability.md, "Early failures") claimed room without bound at a price of 0, drew every
tenant's jobs and reported each Failed at once: 6 of 6 jobs of two tenants ended within seconds while an honest
cluster had room, and nothing stopped the next job going there too. Each early failure places its job once more
elsewhere (server/early_failures.py); this keeps the cluster from drawing the next owners' jobs.

The rule: an early failure counts against its cluster only once it is evidence, when the job, placed once more
elsewhere, ran there (server/blame.py: a job that fails early wherever it runs is its own fault; before, such jobs
of four tenants quarantined all 9 healthy clusters of outside QA's soak, finding 1). Per cluster, the confirmed
failures of the last `window` seconds; when they reach `failures`, of at least MIN_OWNERS different owners (the
submitter, security/authz.py `submitter_of`: one tenant's crashing image is that tenant's problem, not the
cluster's) of as many organisations (owners sharing a tenancy group are one: one organisation's users could
otherwise take out a competitor's cluster with jobs that crash only there, outside QA S2), and witnessed by clusters
of MIN_WITNESS_PROVIDERS providers where the fleet has that many besides the cluster (the witness's Running or
Succeeded is what makes a failure evidence; a provider that reported other tenants' retries Running had an honest
competitor quarantined on its word alone, S4), the cluster is quarantined for `seconds`, unless that would
quarantine more than MAX_SHARE of the Ready clusters (rounded down: none of one, one of two or three, four of nine).
Over the cap the cluster is not quarantined: a warning says so and
`federator_cluster_quarantines_capped_total{cluster}` counts it; its evidence is kept, so it is quarantined at its
next confirmed failure once the cap allows. Why a cap: when more than half the fleet looks bad at once the cause is
more likely the work or something fleet-wide than the members, and taking them out turns a bad hour for some jobs
into an outage for all (the soak: 722 jobs waited, 897 of 1,008 accelerators free); the majority keeps taking work
while someone looks.

A quarantined cluster stays Ready (its lease, its jobs, its reports are as before) and runs what it holds; the
scheduling snapshot shows it as Quarantined, so the filter that keeps work off a cluster that is not Ready keeps
new work off it, with that reason (no scheduler concept of its own). When the time is up the cluster takes work
again, and its count starts from nothing.

Kept across a restart: each quarantine's start, end, lift and forget is written to where the cordons are kept
(server/quarantine_store.py: the SQLite file, or the MemberCluster's annotation `federator.io/quarantine`), soon
after it holds, off the event loop. A restarted federator holds what was kept, in force from its first
scheduling cycle with its reason and its end; one whose end has passed is dropped, and deleted from the store.
One kept is held whatever the cap says: at start no cluster is Ready yet, and the cap guards against
quarantining much of a fleet on fresh evidence, not against evidence already weighed. Memory only: the pending
blames and the failure counts (evidence on its way): a cluster not quarantined yet must fail work again after a
restart (each such job is still placed once more elsewhere).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from federator.model.quarantine import Held
from federator.security.authz import Submitter
from federator.server.blame import Blame, Blames
from federator.server.quarantine_store import QuarantineStore, QuarantineWrites

log = logging.getLogger("federator.server")

DEFAULT_QUARANTINE_FAILURES = 3
DEFAULT_QUARANTINE_WINDOW_SECONDS = 600.0
DEFAULT_QUARANTINE_SECONDS = 1_800.0
MIN_OWNERS = 2
"""Different owners among a cluster's early failures before it is quarantined; as many different organisations
(owners who share no tenancy group), so one organisation's two users are one."""
MIN_WITNESS_PROVIDERS = 2
"""Providers whose clusters ran the failed jobs afterwards (the witnesses) before a cluster is quarantined; fewer
where the fleet has fewer providers besides the accused cluster."""
MAX_SHARE = 0.5
"""The share of the Ready clusters (quarantined ones included) that may be quarantined at once, rounded down."""
KEPT_FAILURES = 256
"""Early failures remembered per cluster at most (the newest): a bound on memory whatever a cluster reports."""


@dataclass(frozen=True, slots=True)
class QuarantinePolicy:
    """`failures` confirmed early failures of MIN_OWNERS owners within `window` seconds quarantine a cluster for
    `seconds` (MAX_SHARE of the Ready clusters at most); `failures` 0: never."""

    failures: int = DEFAULT_QUARANTINE_FAILURES
    window: float = DEFAULT_QUARANTINE_WINDOW_SECONDS
    seconds: float = DEFAULT_QUARANTINE_SECONDS

    def __post_init__(self) -> None:
        if self.failures < 0:
            raise ValueError(f"failures: must be 0 (never quarantine) or more, got {self.failures}")
        for name in ("window", "seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number of seconds, got {value:g}")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One confirmed early failure: when it counted, whose job (and the owner's tenancy groups), and the provider
    of the cluster where the job then ran (the witness, whose word made it evidence)."""

    at: float
    owner: Submitter
    groups: frozenset[str]
    witness_provider: str


def organisations_among(evidence: Iterable[Evidence]) -> int:
    """How many organisations own these failures: owners who share a tenancy group are one (outside QA S2: one
    organisation's two users, three jobs that crashed only on a competitor's cluster, quarantined it for everyone).
    Owners without groups are each their own."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for e in evidence:
        me = root(f"owner:{e.owner}")
        for group in e.groups:
            parent[root(f"group:{group}")] = me
            me = root(me)
    return len({root(f"owner:{e.owner}") for e in evidence})


class Quarantine:
    """The clusters quarantined now, the pending blames (server/blame.py) and each cluster's confirmed early
    failures; see the module docstring."""

    def __init__(self, policy: QuarantinePolicy | None = None, *, early_seconds: float = 300.0,
                 ready: Callable[[], int] = lambda: 0,
                 provider_of: Callable[[str], str] = lambda cluster: "",
                 providers_besides: Callable[[str], int] = lambda cluster: 1,
                 on_start: Callable[[str], None] = lambda cluster: None,
                 on_end: Callable[[str], None] = lambda cluster: None,
                 on_capped: Callable[[str], None] = lambda cluster: None) -> None:
        self.policy = policy or QuarantinePolicy()
        self.blames = Blames(seconds=early_seconds, window=self.policy.window)
        self._ready = ready  # how many clusters are Ready now (quarantined ones too): the cap's base
        self._provider_of = provider_of  # a cluster's provider ("" for the federation's own)
        self._providers_besides = providers_besides  # providers of the Ready clusters other than this one
        self._on_start = on_start
        self._on_end = on_end
        self._on_capped = on_capped
        self._failures: dict[str, deque[Evidence]] = {}
        self._held: dict[str, Held] = {}
        self.writes = QuarantineWrites()  # each change, kept in the store once one is attached

    @property
    def store(self) -> QuarantineStore | None:
        return self.writes.store

    def attach(self, store: QuarantineStore, *, now: float, load: bool = True) -> None:
        """Keep quarantines in `store` from now on, and (`load`) hold what it holds (`restore`)."""
        self.writes.store = store
        if load:
            self.restore(store.load(), now)

    def restore(self, kept: Mapping[str, Held], now: float) -> None:
        """The quarantines a store kept (at start): each still in time holds, whatever the cap says (module
        docstring); each whose end has passed is dropped, and deleted from the store. One held already (started
        since this start) stays as it is."""
        for cluster, held in sorted(kept.items()):
            if cluster in self._held:
                continue
            if now >= held.until:
                log.info("cluster %s: its kept quarantine ended while no federator ran; dropped", cluster)
                self.writes.put(cluster, None)
                continue
            self._held[cluster] = held
            log.warning("cluster %s quarantined for %.0fs more (kept from before this start): %s", cluster,
                        held.until - now, held.why)

    def failed_early(self, job_id: str, cluster: str, owner: Submitter, now: float,
                     groups: frozenset[str] = frozenset()) -> None:
        """A job's first early failure, on `cluster`: a blame once the job runs elsewhere (server/blame.py);
        `groups`: its owner's tenancy groups (the organisation)."""
        if self.policy.failures > 0:
            self.blames.failed_early(job_id, cluster, owner, now, groups)

    def confirm(self, blame: Blame | None, now: float) -> Held | None:
        """Count one confirmed early failure against its cluster; the quarantine it starts, if it starts one."""
        policy = self.policy
        if blame is None or policy.failures <= 0 or self._holding(blame.cluster, now):
            return None
        cluster = blame.cluster
        recent = self._failures.setdefault(cluster, deque(maxlen=KEPT_FAILURES))
        recent.append(Evidence(now, blame.owner, blame.groups, self._provider_of(blame.witness)))
        while recent and now - recent[0].at > policy.window:
            recent.popleft()
        owners = {e.owner for e in recent}
        organisations = organisations_among(recent)
        witnesses = {e.witness_provider for e in recent}
        need = min(MIN_WITNESS_PROVIDERS, max(1, self._providers_besides(cluster)))
        if len(recent) < policy.failures or len(owners) < MIN_OWNERS or organisations < MIN_OWNERS \
                or len(witnesses) < need:
            return None
        held_now, ready = len(self._current(now)), self._ready()
        if held_now + 1 > int(ready * MAX_SHARE):
            log.warning("cluster %s not quarantined: %d placements of %d owners that then ran elsewhere failed "
                        "there early within %gs, but %d of %d Ready clusters are quarantined and at most %d may be "
                        "(half, rounded down)", cluster, len(recent), len(owners), policy.window, held_now, ready,
                        int(ready * MAX_SHARE))
            self._on_capped(cluster)
            return None
        del self._failures[cluster]
        held = self._held[cluster] = Held(
            now + policy.seconds,
            f"{len(recent)} placements of {len(owners)} owners failed within --early-failure-seconds of their start "
            f"in {policy.window:g}s and then ran on another cluster; no new work for {policy.seconds:g}s "
            "(--quarantine-seconds)")
        log.warning("cluster %s: the evidence: owners %s; then ran on clusters of providers %s", cluster,
                    ", ".join(sorted({str(e.owner) for e in recent})),
                    ", ".join(sorted(repr(p) for p in witnesses)))
        log.warning("cluster %s quarantined: %s", cluster, held.why)
        self.writes.put(cluster, held)
        self._on_start(cluster)
        return held

    def holding(self, cluster: str, now: float) -> Held | None:
        """The cluster's quarantine if it holds at `now` (after counting the blames confirmed by now); one that
        ran out ends here."""
        self._count_confirmed(now)
        return self._holding(cluster, now)

    def current(self, now: float) -> frozenset[str]:
        """The clusters quarantined at `now` (after counting the blames confirmed by now; each that ran out
        ends)."""
        self._count_confirmed(now)
        return self._current(now)

    def lift(self, cluster: str) -> Held | None:
        """An operator ended the cluster's quarantine (uncordon, server/cordons.py): it takes work again now, and
        its count starts from nothing, as when the time is up. The quarantine lifted, if one held."""
        self._failures.pop(cluster, None)
        held = self._held.pop(cluster, None)
        self.writes.put(cluster, None)  # held or not: one kept that this start could not read goes too
        if held is not None:
            log.warning("cluster %s: quarantine lifted by an operator; it takes new work again", cluster)
            self._on_end(cluster)
        return held

    def forget(self, cluster: str) -> None:
        """The cluster left the registry: nothing of it is kept."""
        self._failures.pop(cluster, None)
        self._held.pop(cluster, None)
        self.writes.put(cluster, None)  # held or not: a kept one this start did not load goes too
        self.blames.forget(cluster)

    def _count_confirmed(self, now: float) -> None:
        """The blames whose jobs have now run long enough elsewhere count (no timer: each look counts them)."""
        for blame in self.blames.confirmed(now):
            self.confirm(blame, now)

    def _current(self, now: float) -> frozenset[str]:
        return frozenset(c for c in list(self._held) if self._holding(c, now) is not None)

    def _holding(self, cluster: str, now: float) -> Held | None:
        held = self._held.get(cluster)
        if held is None or now < held.until:
            return held
        del self._held[cluster]
        log.warning("cluster %s: quarantine over; it takes new work again", cluster)
        self.writes.put(cluster, None)
        self._on_end(cluster)
        return None


__all__ = ["DEFAULT_QUARANTINE_FAILURES", "DEFAULT_QUARANTINE_SECONDS", "DEFAULT_QUARANTINE_WINDOW_SECONDS",
           "KEPT_FAILURES", "MAX_SHARE", "MIN_OWNERS", "Held", "Quarantine", "QuarantinePolicy"]
