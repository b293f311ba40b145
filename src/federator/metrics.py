"""Every Prometheus metric the federator exports, defined in one place.

(An agent's own metrics, `federator_agent_*` on `federator agent
--metrics-listen`, are defined in `federator.agent.metrics`. The
`federator_agent_report_age_seconds`, `_reports_total` and
`_connections_total` below are the federator's view of its agents.)

Naming follows Prometheus practice: a `federator_` prefix, base units
(`_seconds`, `_bytes`), `_total` on counters, and bounded labels only:
`cluster`, `region`, `vendor` and `model` (of an accelerator pool), `queue`, `phase`, `state`, `reason` (a
ReasonCode, never free text), `result`, and for gRPC calls `grpc_service`,
`grpc_method`, `grpc_code` (see server/interceptors.py). `queue` is named by
users, so it goes through one `BoundedLabel` for every metric that has it: the
queues the policy defines (its `queues`, in Kubernetes mode the Queue objects)
and `default` always keep their names; of the others, the first seen keep
theirs up to LABEL_LIMIT in all, later ones are reported as `other` and counted
in `federator_metric_label_overflow_total`.

Event metrics (counters, histograms) are updated where the event happens.
State metrics (how many jobs are pending, accelerators free per cluster) are read from
the federator at scrape time by `StateCollector` (state_metrics.py), so they can never go stale
or keep label sets of clusters that are gone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from federator import __version__
from federator.scheduler import COMPILED
from federator.state_metrics import CLUSTER_STATES, ClusterSample, StateCollector, StateSample
from federator.store.errors import WriteFailure

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
# gRPC calls: unary calls take milliseconds, an agent's stream lives for hours.
GRPC_BUCKETS = (*LATENCY_BUCKETS, 30.0, 300.0, 3600.0, 86400.0)


# A label fed by names users choose (queues: a thousand organisations' queue names) keeps this many
# distinct values, the first seen; later ones are reported as OTHER. Each value is a time series for
# every metric with the label, so an unbounded label can take Prometheus down.
LABEL_LIMIT = 200
OTHER = "other"
DEFAULT_QUEUE = "default"  # a job that names no queue is in it (jobfile, JobSpec.queue): never folded


class BoundedLabel:
    """The values of one label, at most `limit` distinct: the defined ones (`define`: the operator's, such as
    the policy's queues) and `reserved` always keep their names (a reserved one takes a slot once seen); the
    rest, the first seen, keep theirs while the defined and kept together are under `limit`; later ones
    become OTHER and are counted in
    `federator_metric_label_overflow_total{label=...}`.

    Why defined values go first: with an open defaultQueue, one tenant submitting to 200 queues of their own
    invention took every slot, and the queues the policy names (other tenants' queues, the ones alerts and
    dashboards are about) showed only as `other` (red team F05). A tenant's invented names now compete for
    what the defined ones leave; an operator who defines more than `limit` gets each of them, and no
    invented one.

    One instance per label, shared by every metric that carries it, so a value is kept or folded the
    same way in all of them (sums across metrics still match). Called from the event loop and from
    the scrape thread, hence the lock."""

    def __init__(self, name: str, *, overflow: Counter, limit: int = LABEL_LIMIT,
                 reserved: frozenset[str] = frozenset()) -> None:
        if limit < 1:
            raise ValueError(f"{name}: a label keeps at least one value, got limit {limit}")
        self.name = name
        self.limit = limit
        self.reserved = reserved
        self._defined: Callable[[], Collection[str]] = tuple
        self._seen_defined: Collection[str] = ()
        self._kept: set[str] = set()  # values kept that nobody defined (when they were kept)
        self._lock = threading.Lock()
        self._overflow = overflow.labels(name)

    def define(self, defined: Callable[[], Collection[str]]) -> None:
        """Where the defined values are read, at each call: the live set (a policy or a Queue object changes
        it), not a copy."""
        self._defined = defined

    def __call__(self, value: str) -> str:
        """`value` if it is defined, reserved, or (still can be) one of the kept values, else OTHER (counted)."""
        defined = self._defined()
        if value in defined:
            return value
        with self._lock:
            if defined is not self._seen_defined:  # a new policy: a kept value it defines holds no slot now
                self._seen_defined = defined
                self._kept.difference_update(defined)
            if value in self._kept:
                return value
            if value in self.reserved or len(self._kept) + len(defined) < self.limit:  # reserved: a slot once seen
                self._kept.add(value)
                return value
        self._overflow.inc()
        return OTHER


M = TypeVar("M", Counter, Histogram)


class BoundedMetric(Generic[M]):
    """A labelled metric whose label at `position` goes through a BoundedLabel: `.labels(...)` as on
    the metric itself, so the places that count need not know the label is bounded."""

    def __init__(self, metric: M, bound: BoundedLabel, *, position: int = 0) -> None:
        self.metric: M = metric
        self.bound = bound
        self.position = position

    def labels(self, *values: str) -> M:
        bounded = list(values)
        bounded[self.position] = self.bound(bounded[self.position])
        return self.metric.labels(*bounded)


class Metrics:
    """The federator's event metrics, in a registry of their own (tests run several)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, label_limit: int = LABEL_LIMIT) -> None:
        self.registry = registry or CollectorRegistry()
        if registry is None:  # the process's own: its start time, memory, CPU and open files (SRE QA F9)
            ProcessCollector(registry=self.registry)
        self.state_loop: asyncio.AbstractEventLoop | None = None  # set by the server: where state is sampled
        r = self.registry
        overflow = Counter("federator_metric_label_overflow_total",
                           f"Label values reported as '{OTHER}' because the label already had its "
                           f"{label_limit} values (scrape-time gauges count at every scrape), by label; "
                           "label accelerator_seconds_series: accelerator-seconds counted under 'other' in every "
                           "label because federator_accelerator_seconds_total had its label sets.",
                           ["label"], registry=r)
        self.label_overflow = overflow
        # Every metric with a queue label takes it through this one bound (the state gauges too).
        self.queue_label = BoundedLabel("queue", overflow=overflow, limit=label_limit,
                                        reserved=frozenset({DEFAULT_QUEUE}))
        self.jobs_submitted = BoundedMetric(Counter("federator_jobs_submitted_total", "Jobs accepted by Submit.",
                                                    ["queue"], registry=r), self.queue_label)
        self.jobs_rejected = Counter("federator_jobs_rejected_total",
                                     "Job submissions refused as invalid (not back-pressure: a valid job refused "
                                     "for want of room is counted in federator_messages_rejected_total{reason="
                                     "queue_full|queue_pending_limit|user_pending_limit|delegate_pending_limit}).",
                                     registry=r)
        self.placements = Counter("federator_placements_total",
                                  "Placement decisions by result (placed, unschedulable, refused, adopted).",
                                  ["result"], registry=r)
        self.jobs_finished = BoundedMetric(Counter("federator_jobs_finished_total", "Jobs that reached a final phase.",
                                                   ["queue", "phase"], registry=r), self.queue_label)
        # Jobs the federator stopped at their spec.maxRunSeconds (server/run_limits.py).
        self.jobs_run_limit_exceeded = BoundedMetric(Counter(
            "federator_jobs_run_limit_exceeded_total",
            "Jobs that ran past their spec.maxRunSeconds: the federator cancelled every placement and the job "
            "failed (reason DeadlineExceeded); also in federator_jobs_finished_total{phase=\"Failed\"}.",
            ["queue"], registry=r), self.queue_label)
        self.cycle_duration = Histogram("federator_scheduling_cycle_duration_seconds",
                                        "Wall time of one scheduling cycle.", buckets=LATENCY_BUCKETS, registry=r)
        self.submit_to_placement = BoundedMetric(Histogram("federator_job_submit_to_placement_seconds",
                                                           "Time from a job's submission to its placement.",
                                                           ["queue"], buckets=WAIT_BUCKETS, registry=r),
                                                 self.queue_label)
        self.agent_reports = Counter("federator_agent_reports_total", "Capacity reports received.",
                                     ["cluster"], registry=r)
        # Each refused capacity report, by cluster and reason (server/refused_reports.py): a member whose every
        # report is refused keeps its lease; federator_messages_rejected_total has no cluster label.
        self.agent_reports_refused = Counter(
            "federator_agent_reports_refused_total",
            "Capacity reports of a member's agent refused (not taken), by reason (a RejectReason: malformed, "
            "implausible_report, stale_report, oversized); the agent was sent an Error naming the field.",
            ["cluster", "reason"], registry=r)
        self.agent_messages_refused = Counter(
            "federator_agent_messages_refused_total",
            "Messages of a member's agent other than capacity reports refused, by reason (a RejectReason: "
            "empty_message, malformed, unexpected, second_hello, ...); each answered with an Error. The log says "
            "the first ones of each minute, then sums up (server/refused_messages.py).",
            ["cluster", "reason"], registry=r)
        # Each ask for an agent's full placement list after a delta not applied (server/placement_lists.py).
        self.placement_list_asks = Counter(
            "federator_agent_placement_list_asks_total",
            "Asks for a member's agent's full placement list (PlacementListWanted) after a report's placement delta "
            "could not be applied, by reason: no_list (the stream holds none), other_base (a report between was "
            "refused), malformed (the delta contradicts the list: also a refused report).",
            ["cluster", "reason"], registry=r)
        self.agent_connects = Counter("federator_agent_connections_total", "Agent streams opened.",
                                      ["cluster"], registry=r)
        # A second agent with a cluster's name, refused while the first is live (server/duplicates.py).
        self.agent_duplicates_refused = Counter(
            "federator_agent_duplicates_refused_total",
            "Agent streams refused (ALREADY_EXISTS) because another agent instance with the same cluster name holds "
            "the cluster and was heard within its lease: two agents run for one cluster.", ["cluster"], registry=r)
        # Hellos claiming another region than the cluster's recorded or bound one, refused (server/cluster_regions.py).
        self.region_changes_refused = Counter(
            "federator_agent_region_changes_refused_total",
            "Agent streams refused (PERMISSION_DENIED) because the Hello claimed another region than the one the "
            "cluster registered with (or an admin's MemberCluster names, or its certificate or the trust file binds); "
            "the cluster keeps its region and its work.",
            ["cluster"], registry=r)
        # Placements a cluster took and did not start within --start-timeout (server/start_deadline.py).
        self.placement_start_timeouts = Counter(
            "federator_placement_start_timeouts_total",
            "Placements a member cluster did not start (still Placed) within --start-timeout; each job was "
            "placed again, elsewhere if another cluster had room.", ["cluster"], registry=r)
        # Placements a cluster reported Failed soon after their start, and the quarantines that followed
        # (server/early_failures.py, server/quarantine.py).
        self.placement_early_failures = Counter(
            "federator_placement_early_failures_total",
            "Placements a member cluster reported Failed within --early-failure-seconds of their start; a job's "
            "first was placed once more, elsewhere.", ["cluster"], registry=r)
        # End times an agent said outside [start, learned] (server/end_times.py): clamped, so never billed longer.
        self.end_times_clamped = Counter(
            "federator_job_end_times_clamped_total",
            "Final phases whose JobUpdate.ended_at lay outside [the job's start, when the federator learnt of the "
            "end], or was not a number: taken clamped into it (a wrong or hostile clock shortens a bill, never "
            "lengthens it). reason: future, before_start, invalid.", ["cluster", "reason"], registry=r)
        # Placements an agent reported lost (lost_placements.py): never placed again there (server/early_failures.py).
        self.placements_lost = Counter(
            "federator_placements_lost_total",
            "Placements a member's agent reported Failed as lost (it can no longer follow or cancel them, their "
            "pods may still run): never placed again there; a gang's job failed, a spread job's part ended alone.",
            ["cluster"], registry=r)
        self.cluster_quarantines = Counter(
            "federator_cluster_quarantines_total",
            "Times a member cluster was quarantined (no new work for --quarantine-seconds) after failing "
            "placements of several owners soon after their start.", ["cluster"], registry=r)
        self.cluster_quarantines_capped = Counter(
            "federator_cluster_quarantines_capped_total",
            "Times a member cluster met the quarantine rule but was not quarantined: half the Ready clusters "
            "(rounded down) were quarantined already.", ["cluster"], registry=r)
        self.scheduling_phase_duration = Histogram(
            "federator_scheduling_phase_duration_seconds",
            "Wall time of one phase of a scheduling cycle (order, prescore, place, preempt; rollout "
            "when the cycle first ran the rollouts that choose Scarcity's scale).",
            ["phase"], buckets=LATENCY_BUCKETS, registry=r)
        self.preemptions = BoundedMetric(Counter("federator_preemptions_total",
                                                 "Placed or running jobs evicted to make room for higher-priority "
                                                 "work, by the evicted job's queue.", ["queue"], registry=r),
                                         self.queue_label)
        self.placement_retries = Counter("federator_placement_retries_total",
                                         "Jobs sent back to pending after a placement was lost "
                                         "(refused by the cluster, cluster lost, launch failed), by reason code.",
                                         ["reason"], registry=r)
        # What scaling an inference job down did to its parts (server/shrink.py): bounded labels.
        self.scale_down_parts = Counter("federator_scale_down_parts_total",
                                        "Parts (placements) of inference jobs scaled down, by what happened to them: "
                                        "shrunk (in place: a Resize to an agent that can), stopped (whole: a Cancel, "
                                        "their replicas owed placed again), refused (a Resize the agent could not "
                                        "carry out: the part was then replaced).", ["result"], registry=r)
        # Asks of agents whose member's own queue (Kueue) held a Placed placement past their admission timeout
        # (server/moving.py), by the federator's answer: moved, or kept in that member's queue.
        # Placements an admin's drain ended (server/drains.py): their jobs requeued, to be placed elsewhere.
        self.drained_placements = Counter("federator_drained_placements_total",
                                          "Placements on a member cluster an admin's drain ended (federator drain): "
                                          "their jobs requeued as the same jobs, reason Drained, to be placed "
                                          "elsewhere.", ["cluster"], registry=r)
        # A drain's serving jobs moved surge first (server/drain_surge.py), by outcome: bounded labels.
        self.drain_surges = Counter("federator_drain_surges_total",
                                    "Serving jobs a drain moved surge first (replacements placed elsewhere before "
                                    "the drained cluster's replicas end), by outcome: started (replacements "
                                    "placed), completed (they served, then the drained replicas ended), late (the "
                                    "drained replicas ended at the bound with the replacements still starting).",
                                    ["outcome"], registry=r)
        self.placement_moves = Counter("federator_placement_moves_total",
                                       "Placements an agent asked to move because its member's own queue held them "
                                       "past the admission timeout, by the federator's answer: moved (another "
                                       "cluster can run the job now) or kept (none can; it keeps its place in the "
                                       "member's queue).", ["cluster", "result"], registry=r)
        # Serving replicas moved back near their users (server/rebalancing.py), by outcome: bounded labels.
        self.rebalance_moves = Counter("federator_rebalance_moves_total",
                                       "Moves of serving replicas back near their users (or into a region their "
                                       "minRegions asks), by outcome: started (new replicas placed nearer, make "
                                       "before break), completed (they serve, and as many far ones were taken), "
                                       "failed (they ended before serving; nothing was taken).", ["outcome"],
                                       registry=r)
        self.grpc_started = Counter("federator_grpc_server_started_total", "gRPC calls started on the server.",
                                    ["grpc_service", "grpc_method"], registry=r)
        self.grpc_handled = Counter("federator_grpc_server_handled_total",
                                    "gRPC calls completed on the server, by status code.",
                                    ["grpc_service", "grpc_method", "grpc_code"], registry=r)
        self.grpc_shed = Counter("federator_grpc_server_shed_total",
                                 "Job API calls answered RESOURCE_EXHAUSTED (reason BUSY) unread, because too many "
                                 "were in flight, or waiting unanswered (server/shedding.py); also "
                                 "counted in federator_grpc_server_handled_total.",
                                 ["grpc_service", "grpc_method"], registry=r)
        self.grpc_handling = Histogram("federator_grpc_server_handling_seconds",
                                       "Time from a gRPC call's start to its completion on the server "
                                       "(an agent's stream lasts as long as its connection).",
                                       ["grpc_service", "grpc_method"], buckets=GRPC_BUCKETS, registry=r)
        self.messages_rejected = Counter("federator_messages_rejected_total",
                                         "Agent or API messages refused as malformed or oversized.",
                                         ["reason"], registry=r)
        # Tenancy (security/authz.py, security/audit.py) and accounting (accounting/): see docs/security.md.
        self.audit_lines = Counter("federator_audit_lines_total",
                                   "Audit log lines written, by action (submit, cancel, scale, queue.change, "
                                   "certificate.revoke, federatedjob.refuse) and result (accepted, refused, failed).",
                                   ["action", "result"], registry=r)
        # The meter bounds every label (the queue through queue_label) and the label sets (accounting.meter): not
        # user and namespace, whose product with the rest each label's own bound did not bound (`federator usage
        # --by user` has them).
        # The meter takes the queue through the bound itself, then decides the label set, and counts on `.metric`.
        self.accelerator_seconds = BoundedMetric(Counter(
            "federator_accelerator_seconds_total",
            "Accelerator-seconds used: accelerators held by running placements x seconds, by queue, member "
            "cluster, provider, accelerator model, region (the cluster's when used) and vendor (by user or "
            "namespace: federator usage).",
            ["queue", "cluster", "provider", "model", "region", "vendor"], registry=r), self.queue_label)
        # accounting/retention.py: records deleted past --usage-retention (a flat line with a growing --db file:
        # the retention is 0, or longer than the volume was sized for).
        self.usage_records_pruned = Counter(
            "federator_usage_records_pruned_total",
            "Usage records deleted because they ended longer ago than --usage-retention.", registry=r)
        # Kubernetes mode's job store (backends/kube/store.py): each job write the API server did not take.
        self.store_write_errors = Counter(
            "federator_store_write_errors_total",
            "Job writes the store did not take, by reason: forbidden (401/403: the federator's RBAC), invalid "
            "(400/422: e.g. an old FederatedJob CRD), conflict (409: a FederatedJob that is not the job's holds "
            "its name), unavailable (no answer, 429, 5xx; SQLite: a full disk, an I/O error), other.", ["reason"],
            registry=r)
        for reason in WriteFailure:  # each from 0: rate() sees the first error
            self.store_write_errors.labels(reason.value)
        # The --db file deleted or replaced under a running federator (store/identity.py): read at each scrape.
        self.store_file_gone = Gauge(
            "federator_store_file_gone",
            "1 while the --db path no longer names the SQLite file the federator opened (deleted or replaced while "
            "it ran): every write is refused (reason file_gone) until it is stopped and the right file put back.",
            registry=r)
        # Placements agents run of jobs this federator's store has no record of (server/orphans.py).
        self.orphan_placements = Gauge(
            "federator_orphan_placements",
            "Placements a member cluster reports of jobs this federator's store has no record of (or of a newer "
            "generation than it stored): --db replaced, or restored from an old backup. Cancelled once reported "
            "for --orphan-grace.", ["cluster"], registry=r)
        # Reports whose pools contradict the placements they list (server/consistency.py): applied, but those
        # placements' resources are held by the federator itself.
        self.reports_clamped = Counter(
            "federator_reports_clamped_total",
            "Capacity reports applied clamped to the provider's maxAccelerators (trust file): they claimed more "
            "accelerators than the bound, and the federator offered at most the bound (server/over_bound.py).",
            ["cluster"], registry=r)
        self.inconsistent_reports = Counter(
            "federator_inconsistent_reports_total",
            "Capacity reports applied although a pool of theirs leaves fewer accelerators not whole free than the "
            "live placements they list on it hold: those placements were taken as not subtracted.",
            ["cluster"], registry=r)
        # Words an agent says as the federator's own that their seal did not prove (server/seals.py, adoption.py).
        self.agent_unproven_words = Counter(
            "federator_agent_unproven_words_total",
            "Words an agent said as the federator's own that their seal did not prove, each refused: word launch (a "
            "placement newer than the store, not adopted) or job_ended (a Cancelled update not taken as its job's "
            "end); reason unsealed (none said: an agent before 0.20.0), other_key (a key the federator does not "
            "hold: its serving key renewed without --seal-key-file, or a key dropped from that file) or wrong (not "
            "the federator's seal of that word: forged, or another placement's).",
            ["cluster", "word", "reason"], registry=r)
        # JobUpdates dropped over a stream's update budget (Limits.job_updates_per_second; server/agent_service.py).
        self.job_updates_limited = Counter(
            "federator_job_updates_limited_total",
            "JobUpdates dropped because their cluster sent more than its update budget allows.",
            ["cluster"], registry=r)
        # Watch streams open (server/watch_seats.py), read against --max-watches: the job service sets its function.
        self.watch_streams = Gauge(
            "federator_watch_streams",
            "JobService.Watch streams open, every user's; at --max-watches one more is refused RESOURCE_EXHAUSTED "
            "(WATCHES_FULL), and in its last tenth a user already holding one is.", registry=r)
        # `federator logs --follow` streams open (server/log_follow.py), read against --max-log-follows.
        self.log_follows = Gauge(
            "federator_log_follows",
            "JobService.FollowLogs streams open, every user's; each asks the agents of its job's clusters for new "
            "output every 2 s. At --max-log-follows one more is refused RESOURCE_EXHAUSTED (LOG_FOLLOWS_FULL).",
            registry=r)
        # Cancels of removed jobs a member has not confirmed (server/unconfirmed_cancels.py).
        self.unconfirmed_cancels = Gauge(
            "federator_unconfirmed_cancels",
            "Placements of jobs removed while running (Kubernetes mode: FederatedJobs deleted) whose cancel the member "
            "cluster has not confirmed yet; kept on its MemberCluster, so the agent's re-sync cancels them at once "
            "even after a federator restart.", ["cluster"], registry=r)
        # Lost members dropped from the registry (server/leases.py): --forget-lost-after, or kubectl delete mc.
        self.clusters_forgotten = Counter(
            "federator_clusters_forgotten_total",
            "Lost member clusters the federator forgot (Lost for --forget-lost-after with no placement there, or "
            "their MemberCluster deleted): gone from get clusters and from every per-cluster series.", registry=r)
        # The trust file re-read while running (security/trust_reload.py): SIGHUP, or a change on disk.
        self.trust_reloads = Counter(
            "federator_trust_reload_total",
            "Re-reads of the provider trust file that found it changed (or were asked for by SIGHUP), by result: "
            "ok (the new trust taken) or refused (it does not load; the last good trust kept).", ["result"],
            registry=r)
        for result in ("ok", "refused"):  # each from 0: increase() sees the first refusal
            self.trust_reloads.labels(result)
        self.trust_reload_failing = Gauge(
            "federator_trust_reload_failing",
            "1 while the provider trust file on disk is refused and the federator runs on the last good trust.",
            registry=r)
        # The federator's own TLS files re-read while running (security/serving_reload.py): a renewed certificate.
        self.serving_certificate_reloads = Counter(
            "federator_serving_certificate_reload_total",
            "Re-reads of the federator's TLS files (--cert, --key, --ca) that found them changed (or were asked for "
            "by SIGHUP), by result: ok (served from the next handshake) or refused (the last good pair kept).",
            ["result"], registry=r)
        for result in ("ok", "refused"):
            self.serving_certificate_reloads.labels(result)
        self.serving_certificate_reload_failing = Gauge(
            "federator_serving_certificate_reload_failing",
            "1 while the federator's TLS files on disk are refused and it serves the last good certificate.",
            registry=r)
        # The policy file re-read while running (server/policy_file.py): SIGHUP, or a change on disk.
        self.policy_reloads = Counter(
            "federator_policy_reload_total",
            "Re-reads of the policy file (--policy) that found it changed (or were asked for by SIGHUP), by result: "
            "ok (the new policy taken from the next cycle) or refused (it does not load; the last good policy "
            "kept whole).", ["result"], registry=r)
        for result in ("ok", "refused"):
            self.policy_reloads.labels(result)
        self.policy_reload_failing = Gauge(
            "federator_policy_reload_failing",
            "1 while the policy file on disk is refused and the federator runs on the last good policy.",
            registry=r)
        self.serving_certificate_expiry = Gauge(
            "federator_serving_certificate_expiration_timestamp_seconds",
            "When the certificate the federator serves expires (Unix seconds); 0 with --insecure.",
            registry=r)
        # The federator keeps time on a steady clock set from the host's at start (steady_clock.py): how far the
        # host's clock has stepped since. Set by the serving process (set_function); 0 elsewhere.
        self.clock_offset = Gauge(
            "federator_clock_offset_seconds",
            "Seconds the federator's steady clock is ahead of the host's wall clock (negative: behind): how far the "
            "host's clock stepped since the federator started. Leases and orders' dates do not move with it; job "
            "times are shown on the steady clock until a restart takes the host's clock again.", registry=r)
        # 0 while a replica waits for the leader Lease (it serves /metrics only), 1 once it acts.
        self.leader = Gauge("federator_leader", "1 if this federator replica is the active leader.", registry=r)
        # A failover left no trace once over (HA QA F2): each replica counts the times it began to lead. A replica
        # leads at most once in its life (it exits when it loses the Lease), and a standby serves this at 0 while it
        # waits, so the increase summed over a federation's replicas counts its leader changes, the first start too.
        self.leader_acquisitions = Counter(
            "federator_leader_acquisitions_total",
            "Times this federator replica began to lead (took the leader Lease; without leader election, its start).",
            registry=r)
        # Which build runs: an image whose placement core did not compile places about half as fast.
        build = Gauge("federator_build_info", "Always 1: the federator's version, and whether its placement core "
                      "runs compiled (mypyc, setup.py) or interpreted.", ["version", "scheduler"], registry=r)
        build.labels(__version__, "compiled" if COMPILED else "interpreted").set(1)

    def cluster_counters_from_zero(self, cluster: str) -> None:
        """A cluster's event counters exist from 0 once it connects: increase() sees its first event."""
        for counter in (self.placement_start_timeouts, self.placement_early_failures, self.placements_lost,
                        self.cluster_quarantines,
                        self.cluster_quarantines_capped, self.agent_duplicates_refused, self.reports_clamped,
                        self.region_changes_refused):
            counter.labels(cluster)
        for word in ("launch", "job_ended"):  # server/seals.py: UNSEALED, OTHER_KEY, WRONG
            for reason in ("unsealed", "other_key", "wrong"):
                self.agent_unproven_words.labels(cluster, word, reason)

    def observe_cycle(self, seconds: float, phase_seconds: Mapping[str, float]) -> None:
        """Record one scheduling cycle: its wall time and the time of each of its phases."""
        self.cycle_duration.observe(seconds)
        for phase, took in phase_seconds.items():
            self.scheduling_phase_duration.labels(phase).observe(took)

    def watch_store(self, queued: Callable[[], int], lazy: Callable[[], int],
                    unwritten: Callable[[], Mapping[str, int]] = dict) -> None:
        """The job store's write queue: a queue that keeps growing means the disk is slower than the work.
        `unwritten`: jobs whose newest state the store holds for a retry, by reason."""
        writes = Gauge("federator_store_queued_jobs", "Job writes waiting for the store, by kind: durable "
                       "(a reply waits for it) or lazy (pending reasons, written when nothing else waits).",
                       ["kind"], registry=self.registry)
        writes.labels("durable").set_function(queued)
        writes.labels("lazy").set_function(lazy)
        held = Gauge("federator_store_unwritten_jobs", "Jobs whose newest state the store has not written and "
                     "retries, backing off (not durable, not shown by kubectl get fj), by the reason of the last "
                     "failure (see federator_store_write_errors_total). Kubernetes mode: statuses the host did "
                     "not take; SQLite mode: a cycle's placements and agents' updates the disk did not take "
                     "(unavailable).", ["reason"], registry=self.registry)
        for reason in WriteFailure:  # every reason, so that a 0 is a sample an alert's absence can rely on
            held.labels(reason.value).set_function(_reading(unwritten, reason.value))

    def watch_demand(self, remembered: Callable[[], int]) -> None:
        """The demand's memory (scheduler/demand.py): how many ended jobs a cycle with little pending work
        steers by. 0 on a federator that has run a while means it steers by its pending work alone."""
        Gauge("federator_demand_memory_jobs", "Ended jobs the scheduler's demand remembers (at most 1,000), "
              "read by a cycle while its pending and running work is under 1,000 replicas.",
              registry=self.registry).set_function(remembered)

    def watch_reservations(self, count: Callable[[], int], held: Callable[[], int],
                           unwritten: Callable[[], int] = lambda: 0) -> None:
        """Reservations of room for gangs that waited (scheduler/reservation.py): how many, and the free
        accelerators they keep idle. An idle count that stays up is the price of landing big gangs. `unwritten`:
        their clocks' changes not written yet (server/reservations.py), which nothing else showed."""
        Gauge("federator_reservations", "Training gangs with reserved room on a cluster after waiting past the "
              "policy's reservations.afterSeconds (at most reservations.maxReservations).",
              registry=self.registry).set_function(count)
        Gauge("federator_reservation_held_accelerators", "Free accelerators that reservations keep idle for the "
              "gangs they reserve room for, as the last cycle began.", registry=self.registry).set_function(held)
        Gauge("federator_reservation_unwritten_clocks", "Changes of the reservations' clocks (a reservation begun, "
              "moved or ended; a rest) not written to their store yet: Kubernetes mode, FederatedJob "
              "status.reservation patches due; standalone, those the --db file refused.",
              registry=self.registry).set_function(unwritten)

    def watch_state(self, sample: Callable[[], StateSample]) -> None:
        self.registry.register(StateCollector(sample, lambda: self.state_loop, queue_label=self.queue_label))


def _reading(counts: Callable[[], Mapping[str, int]], key: str) -> Callable[[], float]:
    """A gauge's function: one key of counts read at scrape time (0 when absent)."""
    return lambda: float(counts().get(key, 0))


# The state sample's types are watch_state's: importers of metrics keep finding them here.
__all__ = ["CLUSTER_STATES", "LABEL_LIMIT", "OTHER", "BoundedLabel", "BoundedMetric", "ClusterSample", "Metrics",
           "StateCollector", "StateSample"]
