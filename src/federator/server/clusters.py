"""What the federator holds per member cluster: its agent session, lease and outbox.

Kept apart from the state machine (`server/federator.py`) so the per-cluster
bookkeeping reads in one place: the lease (`last_seen_at`), the state
(Ready/Partitioned/Lost), the outbox of orders (server/outbox.py), and what the current
session has re-synced.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from federator.model import ClusterCapacity, ClusterState, Job, Placement
from federator.model.cluster import AgentFeature, GangAdmission
from federator.security.limits import Limits, TokenBucket
from federator.security.trust import PROVIDER_LABEL
from federator.server.logs import Waiting
from federator.server.outbox import LIMIT, Outbox
from federator.server.placement_lists import PlacementList
from federator.server.reports import ReportGate
from federator.server.validation import StreamChecks

if TYPE_CHECKING:
    from federator.server.duplicates import Duplicate
    from federator.server.region_mismatch import RegionMismatch

FAILOVER_ANNOTATION = "federator.io/failover"
"""A job's failover policy when its cluster is Lost: `replace` (the default) re-places it, `keep` waits."""
FAILOVER_POLICIES = ("replace", "keep")
OUTBOX_LIMIT = LIMIT
"""Orders waiting for one agent at most; past it the agent is not reading and its stream ends (server/outbox.py)."""


@dataclass(slots=True)
class ClusterRecord:
    name: str
    region: str
    labels: dict[str, str]
    state: ClusterState = ClusterState.READY
    capacity: ClusterCapacity | None = None
    last_report_at: float = 0.0
    last_seen_at: float = 0.0  # any message from the agent renews its lease
    connected: bool = False
    disconnected_at: float = 0.0
    partitioned_at: float = 0.0
    ready_at: float = 0.0  # when it last turned Ready (server/start_deadline.py counts a placement's time from it)
    lost_at: float = 0.0  # when it went Lost; Lost for --forget-lost-after with no placement there: forgotten
    session: int = 0  # 0: its agent has not connected to this federator yet (`awaited`)
    outbox: Outbox = field(default_factory=Outbox)  # orders in order, at the agent's pace; how the stream ends
    acked: set[str] = field(default_factory=set)  # live placements whose launch the agent took (`forget_acks`)
    resynced: bool = False  # the first report of this session has been reconciled
    seen: set[str] = field(default_factory=set)  # placements the agent reported in this session
    reports: ReportGate | None = None  # the report rate limit, holding the newest report over it
    checks: StreamChecks = field(default_factory=StreamChecks)  # what this stream said, for the contract checks
    placement_list: PlacementList = field(default_factory=PlacementList)  # its reports' list (placement_lists.py)
    logs: Waiting = field(default_factory=Waiting)  # this stream's LogsRequests not yet answered (server/logs.py)
    gang_admission: GangAdmission = GangAdmission.UNKNOWN  # from the agent's Hello
    # Optional parts of the contract its latest Hello named: kept while it is away and across a restart of the
    # federator (store/members.py), so its part may still shrink in place (server/shrink.py `elastic_parts`); the
    # next Hello replaces them.
    features: frozenset[AgentFeature] = frozenset()
    # Placements whose scale-down Resize its agent has neither answered nor had settled by a re-sync
    # (server/shrink.py `owe`), kept across a restart with the member (store/members.py)
    resizes_owed: set[str] = field(default_factory=set)
    unreachable: str = ""  # its agent cannot reach the member's API server: why (server/member_health.py)
    unreachable_since: float = 0.0
    # Listed in the last report but not taken as subtracted there: its pool contradicted them
    # (server/consistency.py); the federator holds their resources itself (cycle_snapshot.reserved_info).
    uncounted: frozenset[str] = frozenset()
    updates: TokenBucket | None = None  # the JobUpdate budget (Limits.job_updates_per_second), made at first use
    updates_limited: bool = False  # the last JobUpdate was over the budget: the Error for this run was sent
    inconsistent: tuple[str, ...] = ()  # the contradicting pools of the last report, for a log line per change
    instance: str = ""  # its agent process, from the Hello ("" when it sends none; server/duplicates.py)
    peer_address: str = ""  # where its stream comes from (gRPC's peer), named when a second agent is refused
    # When the client certificate its agent last presented expires (Unix seconds; 0: none seen since this federator
    # started, or no certificate: --insecure, a token). Refused handshakes never reach the federator's code, so this
    # is how it can tell a cluster gone quiet because its agent's certificate expired (metrics.py).
    certificate_not_after: float = 0.0
    duplicate: Duplicate | None = None  # the latest second agent refused while this stream held the cluster
    # When the cluster's live streams were taken over by a stream with no instance on one side to tell them apart
    # (the latest TWIN_TAKEOVERS, the federator's clock): how twins without an instance are told (duplicates.py)
    takeovers: tuple[float, ...] = ()
    over_bound: str = ""  # its last report was over its provider's maxAccelerators and clamped: why (over_bound.py)
    # Its reports are refused since the last one taken: the latest refusal's words, and since when
    # (server/refused_reports.py)
    reports_refused: str = ""
    reports_refused_since: float = 0.0
    # When the refusal was last logged at WARNING, and how many refused reports were not logged since
    # (server/refused_reports.py: once per distinct refusal, then every REPEAT_SECONDS while it lasts)
    reports_refused_logged: float = 0.0
    reports_refused_unlogged: int = 0
    # Its record's region and the one its certificate or the trust file binds disagree, so every Hello is refused
    # (server/region_mismatch.py); None once a Hello is admitted. A MemberCluster says it as a condition.
    region_mismatch: RegionMismatch | None = None

    @property
    def can_resize(self) -> bool:
        """Its agent shrinks a placement in place (Resize); else a part that must shrink is replaced."""
        return AgentFeature.RESIZE in self.features

    @property
    def closing(self) -> bool:
        """The stream is ending: nothing more is queued for it."""
        return self.outbox.closing


def forget_acks(clusters: Mapping[str, ClusterRecord], placements: Iterable[Placement]) -> None:
    """Placements that ended (superseded, or their job finished) leave their cluster's `acked`: it only serves
    the re-sync of live placements, and kept forever it would grow with every placement a cluster ever ran."""
    for p in placements:
        rec = clusters.get(p.cluster)
        if rec is not None:
            rec.acked.discard(p.placement_id)
            rec.resizes_owed.discard(p.placement_id)  # the stored copy loses it at the member's next write


def report_gate(limits: Limits, previous: ReportGate | None = None) -> ReportGate:
    """A new stream's report budgets: a count, and bytes (a burst of two seconds of it; server/reports.py). A
    cluster's new stream keeps its previous stream's budgets, debt included: a fresh full bucket per stream let a
    provider reconnecting in a loop have its big reports applied past any budget."""
    if previous is not None:
        return ReportGate(previous.bucket, volume=previous.volume)
    rate = limits.report_bytes_per_second
    return ReportGate(TokenBucket(limits.reports_per_second, limits.report_burst),
                      volume=TokenBucket(rate, max(1, 2 * rate)) if rate else None)


def over_provider_cap(clusters: Mapping[str, ClusterRecord], *, cluster: str, provider: str, cap: int) -> str:
    """Why a new stream of `cluster` would take its provider past `cap` (Limits.max_clusters_per_provider; 0: no
    cap), or "". Every cluster of the provider not Lost counts, connected or not: counting connected ones only
    let a provider mint names in a loop (connect, report, leave), each a record with its last report. A stream
    replacing the cluster's own does not count twice; the federation's own clusters (no provider) are not
    capped."""
    if not cap or not provider:
        return ""
    held = sum(1 for rec in clusters.values()  # a disconnected one may be back any moment: it holds its place
               if rec.state is not ClusterState.LOST and rec.name != cluster
               and rec.labels.get(PROVIDER_LABEL) == provider)
    if held < cap:
        return ""
    return (f"cluster {cluster!r}: provider {provider!r} already has {held} clusters connected or partitioned, its "
            f"cap (--max-clusters-per-provider {cap}); this one may connect once another of its clusters is Lost "
            "(--lost-after after it disconnects)")


def awaited(name: str, *, region: str, labels: dict[str, str], now: float, lost: bool = False,
            last_report_at: float = 0.0) -> ClusterRecord:
    """A cluster known from before this federator started whose agent has not connected to it: Partitioned
    from `now` until it does (Lost after the grace time), or Lost already."""
    return ClusterRecord(name=name, region=region, labels=dict(labels),
                         state=ClusterState.LOST if lost else ClusterState.PARTITIONED, last_report_at=last_report_at,
                         last_seen_at=now, disconnected_at=now, partitioned_at=now, lost_at=now)


def expected_back(jobs: Iterable[Job], *, known: Container[str], now: float) -> dict[str, ClusterRecord]:
    """After a restart: every cluster holding an active placement, and not `known` from elsewhere, is expected
    back (`awaited`)."""
    expected: dict[str, ClusterRecord] = {}
    for job in jobs:
        for p in job.placements:
            if p.phase.is_active and p.cluster not in known and p.cluster not in expected:
                expected[p.cluster] = awaited(p.cluster, region=p.region, labels={}, now=now)
    return expected


__all__ = ["FAILOVER_ANNOTATION", "FAILOVER_POLICIES", "OUTBOX_LIMIT", "ClusterRecord", "awaited", "expected_back",
           "forget_acks", "over_provider_cap", "report_gate"]
