"""Every Prometheus metric an agent exports, defined in one place, and what its probes ask.

The federator's metrics (`federator.metrics`) show a partition from the
federator's side; these show the agent's side, so an SRE looking at a cluster
that went `Partitioned` can tell a dead agent from a cut link from a stuck
backend. They are served on the agent's own endpoint
(`federator agent --metrics-listen`, see `agent/endpoint.py`).

Names follow the federator's rules: a `federator_agent_` prefix, base units,
`_total` on counters. An agent serves one cluster, so the scrape target
already says which; only `federator_agent_info`, `federator_agent_connected`,
`federator_agent_member_api_reachable`, `federator_agent_maintenance`,
`federator_agent_namespace_claim` and
`federator_agent_certificate_expiration_timestamp_seconds` carry a
`cluster` label, so that an alert or a dashboard legend can name the
cluster without a join. Every other label is bounded: `resource` (an accelerator resource of the catalog),
`reason` (an Error's reason of the contract, or other),
`phase` (a JobPhase),
`result` (ok, refused, failed), `origin` (federator, fence), `certificate`
(agent, ca), `reason` (STOP_REASONS), `state` (CLAIM_STATES).

| metric | type | meaning |
| --- | --- | --- |
| federator_agent_info{cluster,region,version} | gauge | always 1 |
| federator_agent_connected{cluster} | gauge | 1 while the stream to the federator is up (Welcome received) |
| federator_agent_stream_sessions_total | counter | streams the federator welcomed |
| federator_agent_reports_sent_total | counter | capacity reports handed to the stream |
| federator_agent_last_send_age_seconds | gauge | since the last message handed to the stream (or the agent's start) |
| federator_agent_placements{phase} | gauge | placements the backend holds, by phase |
| federator_agent_launches_total{result} | counter | launch orders: ok, refused (by backend or malformed), failed |
| federator_agent_launch_duration_seconds | histogram | time the backend took to launch |
| federator_agent_cancels_total{origin} | counter | cancels run: ordered by the federator, or by self-fencing |
| federator_agent_self_fences_total | counter | times the agent stopped its placements after --fence-after cut off |
| federator_agent_placements_stopped_total{reason} | counter | placements the backend stopped and deleted, by why |
| federator_agent_certificate_expiration_timestamp_seconds{cluster,certificate} | gauge | notAfter of --cert, --ca |
| federator_agent_member_api_reachable{cluster} | gauge | 0 while the agent cannot reach its member's API server |
| federator_agent_maintenance{cluster} | gauge | 1 while the agent runs with --maintenance (no new work asked), else 0 |
| federator_agent_unlabelled_accelerators{resource} | gauge | devices not offered: no node label names their model |
| federator_agent_unsupported_accelerators{resource} | gauge | devices not offered: units not chips (Ascend vNPU) |
| federator_agent_messages_rejected_total{reason} | counter | Errors the federator answered, by reason (rejections.py) |
| federator_agent_shared_namespace_agents{cluster} | gauge | other agents whose pods run in this agent's namespaces |
| federator_agent_namespace_claim{cluster,state} | gauge | 1 for its namespace claim's state: held, refused, unchecked |

State gauges (age, placements) are read at scrape time from values the agent's
event loop refreshes, never from the backend directly: a scrape runs on the
HTTP server's thread and must not iterate the backend's dicts under the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from federator import __version__
from federator.agent.refusal import HandshakeFailure
from federator.agent.rejections import reason_label
from federator.model import JobPhase

LAUNCH_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""A simulated launch takes microseconds; a Kubernetes one a round trip or two to the API server."""
LIVENESS_TIMEOUT = 30.0
"""/healthz fails once the event loop has not ticked for this long (stuck, or the agent has ended)."""
LAUNCH_RESULTS = ("ok", "refused", "failed")
CANCEL_ORIGINS = ("federator", "fence")
STOP_REASONS = ("evicted", "preempted", "node_lost", "pod_deleted", "gang_timeout", "gang_broken", "create_forbidden",
                "cancelled")
"""Why a backend stopped a placement and deleted its workload itself (backends/kube/stops.py, `StopReason`)."""
CLAIM_STATES = ("held", "refused", "unchecked")
"""A backend's claim on where it runs (agent/backend.py `ClaimsNamespace`; backends/kube/namespace_claim.py)."""


class AgentMetrics:
    """The agent's metrics in a registry of their own (tests run several agents in one process)."""

    def __init__(self, *, cluster: str, region: str, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic, maintenance: bool = False) -> None:
        self.registry = registry or CollectorRegistry()
        if registry is None:  # the process's own: its start time, memory, CPU and open files (SRE QA F9)
            ProcessCollector(registry=self.registry)
        self.cluster = cluster
        self._clock = clock
        r = self.registry
        info = Gauge("federator_agent_info", "Always 1; labels say which cluster and region this agent serves.",
                     ["cluster", "region", "version"], registry=r)
        info.labels(cluster, region, __version__).set(1)
        self._connected = Gauge("federator_agent_connected",
                                "1 while the agent's stream to the federator is up (the federator welcomed it), "
                                "else 0.", ["cluster"], registry=r)
        self._connected.labels(cluster).set(0)
        self._member = Gauge("federator_agent_member_api_reachable",
                             "0 while the agent cannot reach its member cluster's API server (its probes failed "
                             "past the hysteresis: it reports that instead of capacity, and refuses launches), "
                             "else 1.", ["cluster"], registry=r)
        self._member.labels(cluster).set(1)
        # The provider's own switch, fixed for the process (--maintenance): every report asks the federator for no
        # new work (agent.proto CapacityReport.maintenance). A gauge, not the reason: free text is no label value.
        maintained = Gauge("federator_agent_maintenance",
                           "1 while this agent runs with --maintenance (the provider's maintenance: every report "
                           "asks the federator to send the cluster no new work; what runs stays), else 0.",
                           ["cluster"], registry=r)
        maintained.labels(cluster).set(1 if maintenance else 0)
        self.stream_sessions = Counter("federator_agent_stream_sessions_total",
                                       "Streams to the federator that the federator welcomed.", registry=r)
        self.reports_sent = Counter("federator_agent_reports_sent_total",
                                    "Capacity reports handed to the stream to the federator.", registry=r)
        self.launches = Counter("federator_agent_launches_total",
                                "Launch orders by result: ok, refused (by the backend, or malformed), "
                                "failed (the backend raised).", ["result"], registry=r)
        for result in LAUNCH_RESULTS:
            self.launches.labels(result)
        self.launch_duration = Histogram("federator_agent_launch_duration_seconds",
                                         "Time the backend took to run one launch order.",
                                         buckets=LAUNCH_BUCKETS, registry=r)
        self.cancels = Counter("federator_agent_cancels_total",
                               "Cancels run through the backend, by origin: ordered by the federator, or by "
                               "self-fencing (--fence-after).", ["origin"], registry=r)
        for origin in CANCEL_ORIGINS:
            self.cancels.labels(origin)
        self.placements_stopped = Counter(
            "federator_agent_placements_stopped_total",
            "Placements the backend stopped and deleted on its member by reason: evicted, preempted (the member "
            "disrupted a pod of a gang), node_lost (a node deleted under it), pod_deleted (a pod deleted by the "
            "member), gang_timeout (never whole in time), gang_broken (whole once, then not for the gang timeout), "
            "create_forbidden (the member refused to create its pods: a quota, a LimitRange, an admission webhook), "
            "cancelled (the federator's order).", ["reason"], registry=r)
        for reason in STOP_REASONS:
            self.placements_stopped.labels(reason)
        self.updates_paced = Counter("federator_agent_job_updates_paced_seconds_total",
                                     "Seconds the stream to the federator waited so that JobUpdates stay within "
                                     "the federator's budget (Welcome.max_job_updates_per_second, "
                                     "job_update_burst) instead of being dropped (agent/pacing.py).", registry=r)
        self.self_fences = Counter("federator_agent_self_fences_total",
                                   "Times the agent stopped its placements after --fence-after without the "
                                   "federator.", registry=r)
        self._cert_expiry = Gauge("federator_agent_certificate_expiration_timestamp_seconds",
                                  "When the agent's TLS files expire (notAfter, Unix seconds) as last read: its "
                                  "own certificate (certificate=agent, --cert) and the federation's CA (ca, --ca).",
                                  ["cluster", "certificate"], registry=r)
        self._handshakes = Counter("federator_agent_tls_handshake_failures_total",
                                   "Connects to the federator whose TLS handshake failed, by reason: "
                                   "certificate_expired, certificate_refused (the federator closed the handshake: "
                                   "this agent's certificate refused), server_untrusted, server_name_mismatch, "
                                   "not_tls.", ["cluster", "reason"], registry=r)
        for why in HandshakeFailure:
            self._handshakes.labels(cluster, why.value)
        self._rejected = Counter("federator_agent_messages_rejected_total",
                                 "Errors the federator answered this agent's messages with, by reason: a message "
                                 "refused (implausible_report, malformed, ...), or a report taken with a caveat "
                                 "(over_bound: clamped to the provider's maxAccelerators; inconsistent_report). A "
                                 "reason the agent does not know is counted as other.", ["reason"], registry=r)
        self._unlabelled = Gauge("federator_agent_unlabelled_accelerators",
                                 "Accelerators on nodes without the label that names their model (GPU feature "
                                 "discovery not run there yet): left out of the capacity report, since a pod "
                                 "could not be pinned to them; the agent's log names the nodes.", ["resource"],
                                 registry=r)
        self._unsupported = Gauge("federator_agent_unsupported_accelerators",
                                  "Accelerators in units that are not chips and that the federator has no model "
                                  "of (Huawei static vNPU templates, HAMi's Ascend devices): left out of the "
                                  "capacity report, never counted as chips; the agent's log names the nodes.",
                                  ["resource"], registry=r)
        self._shared = Gauge("federator_agent_shared_namespace_agents",
                             "Other federator agents (another cluster name or --namespace, by the identity written "
                             "on their pods) whose active pods run in a namespace this agent uses: two agents "
                             "given one --namespace. Each leaves the other's placements alone; the agent's log "
                             "names both. 0 when none.", ["cluster"], registry=r)
        self._shared.labels(cluster).set(0)
        self._claim = Gauge("federator_agent_namespace_claim",
                            "1 for the state of the agent's claim on its namespace (Kubernetes backend: a Lease "
                            "there naming its federation): held; refused (another federation's agent holds it: "
                            "this one does not run there, and waits; its log and /readyz say who and the fix); "
                            "unchecked (no Lease could be written: it runs unclaimed). Absent without a claim.",
                            ["cluster", "state"], registry=r)
        self._claim_problem = ""  # the claim's problem while refused, /readyz's words
        # State the event loop refreshes and the scrape thread reads (plain attribute writes: atomic).
        now = clock()
        self._last_send = now
        self._heartbeat = now
        self._phases: Mapping[str, int] = {}
        self._is_connected = False
        self._unlabelled_seen: frozenset[str] = frozenset()
        self._unsupported_seen: frozenset[str] = frozenset()
        self._reported = False  # a capacity report went out on the current stream
        self._stopped = False
        r.register(_StateCollector(self))

    # -- events (called on the agent's event loop) --------------------------------

    def session_opened(self) -> None:
        self.stream_sessions.inc()
        self._is_connected = True
        self._connected.labels(self.cluster).set(1)

    def session_closed(self) -> None:
        self._is_connected = False
        self._reported = False
        self._connected.labels(self.cluster).set(0)

    def sent(self, *, report: bool) -> None:
        """A message was handed to the stream; `report`: it was a capacity report."""
        self._last_send = self._clock()
        if report:
            self.reports_sent.inc()
            self._reported = True

    def launched(self, result: str, seconds: float | None) -> None:
        self.launches.labels(result).inc()
        if seconds is not None:
            self.launch_duration.observe(seconds)

    def cancelled(self, origin: str) -> None:
        self.cancels.labels(origin).inc()

    def placement_stopped(self, reason: str) -> None:
        """The backend stopped a placement itself (`reason`: one of STOP_REASONS; another is counted as given)."""
        self.placements_stopped.labels(reason).inc()

    def member_reachable(self, reachable: bool) -> None:
        """Whether the member's API server answers, as the agent judges it (agent/member_health.py)."""
        self._member.labels(self.cluster).set(1 if reachable else 0)

    def rejected(self, reason: str) -> None:
        """The federator answered a message with an Error of `reason` (bounded: rejections.reason_label)."""
        self._rejected.labels(reason_label(reason)).inc()

    def unlabelled(self, by_resource: Mapping[str, int]) -> None:
        """The backend's unlabelled accelerators per resource now (a resource no longer seen reads 0)."""
        for resource in set(self._unlabelled_seen) - set(by_resource):
            self._unlabelled.labels(resource).set(0)
        for resource, n in by_resource.items():
            self._unlabelled.labels(resource).set(n)
        self._unlabelled_seen = frozenset(by_resource)

    def unsupported(self, by_resource: Mapping[str, int]) -> None:
        """The backend's unsupported accelerators per resource now (a resource no longer seen reads 0)."""
        for resource in set(self._unsupported_seen) - set(by_resource):
            self._unsupported.labels(resource).set(0)
        for resource, n in by_resource.items():
            self._unsupported.labels(resource).set(n)
        self._unsupported_seen = frozenset(by_resource)

    def shared_namespace_agents(self, n: int) -> None:
        """How many other agents' pods run in this agent's namespaces now (backends/kube/tenant_namespaces.py)."""
        self._shared.labels(self.cluster).set(n)

    def namespace_claim(self, state: str, problem: str) -> None:
        """The backend's claim on where it runs is now `state` (CLAIM_STATES); `problem` is why, when not held."""
        for each in CLAIM_STATES:
            self._claim.labels(self.cluster, each).set(1 if each == state else 0)
        self._claim_problem = problem if state == "refused" else ""

    def handshake_failed(self, reason: HandshakeFailure) -> None:
        """A connect to the federator failed in the TLS handshake, for `reason`."""
        self._handshakes.labels(self.cluster, reason.value).inc()

    def certificate_expires(self, certificate: str, not_after: float) -> None:
        """`certificate` (agent: --cert, ca: --ca) expires at `not_after`, as its file says now."""
        self._cert_expiry.labels(self.cluster, certificate).set(not_after)

    def tick(self, placements: Mapping[str, JobPhase]) -> None:
        """The event loop is alive; refresh the placements-by-phase snapshot."""
        counts = dict.fromkeys((p.value for p in JobPhase), 0)
        for phase in placements.values():
            counts[phase.value] += 1
        self._phases = counts
        self._heartbeat = self._clock()

    def stopped(self) -> None:
        self._stopped = True
        self.session_closed()

    # -- what the probes and the scrape read (any thread) -----------------------------

    def alive(self) -> bool:
        """/healthz: the agent's event loop is running and not stuck."""
        return not self._stopped and self._clock() - self._heartbeat < LIVENESS_TIMEOUT

    def ready(self) -> bool:
        """/readyz: the stream to the federator is up and carried a capacity report of the backend's."""
        return self.alive() and self._is_connected and self._reported and not self._claim_problem

    def not_ready(self) -> str:
        """/readyz's words when not ready: the claim refused says who holds the namespace and the fix."""
        if self._claim_problem:
            return f"not running: {self._claim_problem}"
        return "not connected to the federator, or no capacity report sent on this stream yet"

    def last_send_age(self) -> float:
        return max(0.0, self._clock() - self._last_send)

    def phases(self) -> Mapping[str, int]:
        return self._phases


class _StateCollector(Collector):
    def __init__(self, metrics: AgentMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily("federator_agent_last_send_age_seconds",
                                "Seconds since the agent last handed a message to its stream to the federator "
                                "(since it started, if it never has).")
        age.add_metric([], self._m.last_send_age())
        yield age
        held = GaugeMetricFamily("federator_agent_placements", "Placements the agent's backend holds, by phase.",
                                 labels=["phase"])
        for phase, n in sorted(self._m.phases().items()):
            held.add_metric([phase], n)
        yield held


__all__ = ["CLAIM_STATES", "LIVENESS_TIMEOUT", "AgentMetrics"]
