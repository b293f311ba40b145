"""Limits on what a client or an agent may send, and the reasons input is refused.

The federator serves many agents and users from one process: one of them
sending a huge message, a flood of reports or a job asking for a million accelerators
must get a clear refusal and must not slow the others down. Every refusal is
counted in `federator_messages_rejected_total{reason}` with a `RejectReason`
(a bounded set, so the metric label stays small).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from federator.model import PRICE_LABELS, ClusterCapacity, JobSpec, parse_price
from federator.security.podsecurity import PodSecurity
from federator.security.podsecurity_member import policy_of_labels

MAX_ACCELERATORS_PER_NODE = 1024
MAX_NODES = 10_000_000
MAX_POOLS = 64
MAX_PLACEMENT_IDS = 100_000


class RejectReason(StrEnum):
    """Why a message was refused: the `reason` label of federator_messages_rejected_total."""

    BAD_HELLO = "bad_hello"
    IDENTITY_MISMATCH = "identity_mismatch"
    REVOKED = "revoked"
    UNAUTHENTICATED = "unauthenticated"
    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    RATE_LIMITED = "rate_limited"
    UNEXPECTED = "unexpected"
    LIMIT_EXCEEDED = "limit_exceeded"
    INVALID_JOB = "invalid_job"
    # Agent messages that break the agent contract (server/validation.py); each is answered with an Error.
    EMPTY_MESSAGE = "empty_message"
    SECOND_HELLO = "second_hello"
    BAD_TRANSITION = "bad_transition"
    IMPLAUSIBLE_REPORT = "implausible_report"
    STALE_REPORT = "stale_report"
    QUEUE_FULL = "queue_full"  # back-pressure: too many pending jobs; the client is told when to retry
    # back-pressure on one queue: it holds as many pending jobs as it may; other queues' Submits still pass
    QUEUE_PENDING_LIMIT = "queue_pending_limit"
    # back-pressure on one owner (a user; a namespace for kubectl-made FederatedJobs), whatever queues they
    # use: they hold as many pending jobs as they may; other owners' Submits still pass
    USER_PENDING_LIMIT = "user_pending_limit"
    # back-pressure on a delegate (tenancy.delegates): the jobs it submitted for anyone hold its budget of pending
    # jobs or unfinished bytes; the users' own calls and other delegates still pass
    DELEGATE_PENDING_LIMIT = "delegate_pending_limit"
    POD_SECURITY = "pod_security"  # a pod template the federator's pod security level forbids
    UNTRUSTED = "untrusted"  # a live agent stream a reloaded trust file no longer admits: ended


BACK_PRESSURE = frozenset({RejectReason.QUEUE_FULL, RejectReason.QUEUE_PENDING_LIMIT, RejectReason.USER_PENDING_LIMIT,
                           RejectReason.DELEGATE_PENDING_LIMIT})
"""Refusals of a valid job for want of room (a client retries it unchanged): counted in
federator_messages_rejected_total{reason} only, never among the invalid submissions of
federator_jobs_rejected_total."""


MAX_MESSAGE_BYTES_CEILING = 1 << 30
"""The largest --max-message-bytes: gRPC reads the size as a C int, and larger values ended the server with a
traceback. A job is a few KiB and a capacity report of a big cluster tens of KiB."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one message, one agent and one job may ask of the federator."""

    max_message_bytes: int = 1 << 20
    reports_per_second: float = 5.0  # per agent, sustained
    report_burst: int = 20
    # Capacity report bytes per agent per second, sustained (0: no budget): a report passes while the stream
    # is within it, and its size is then owed (server/reports.py). Reports over it are coalesced like those over
    # reports_per_second, so clusters sending big reports often cannot together take the federator's CPU decoding
    # them (a 190 KB report costs ~70 ms: in a worker thread since 0.11.0, server/report_lane.py, which shares the
    # interpreter with the loop, so a flood past a core still slows everything).
    report_bytes_per_second: int = 16 * 1024
    # JobUpdates per agent per second, sustained, and at once (server/agent_service.py): an agent resending updates
    # in a loop cost the federator ~0.35 ms of CPU each, 20,000 duplicates ~7 s, with no word (outside QA F15).
    # Over it an update is dropped, counted, and the first of a run answered with an Error. A session's re-sync
    # (its updates before its first report) is not charged: it may hold every placement of a big member at once.
    job_updates_per_second: float = 100.0
    job_update_burst: int = 10_000
    max_replicas_per_job: int = 1_000
    max_accelerators_per_job: int = 4_096
    max_cpu_cores_per_job: int = 100_000
    max_memory_bytes_per_job: int = 1 << 50  # 1 PiB
    max_labels: int = 64
    # Back-pressure: Submit answers RESOURCE_EXHAUSTED (retry after queue_full_retry_seconds) while this
    # many jobs are pending, so a burst cannot grow the federator's memory without bound.
    max_pending_jobs: int = 250_000
    # The same for one queue (a tenant), so that one cannot fill the federator's and refuse everyone else: a
    # queue's own `maxPendingJobs` (policy file, Queue object) if it has one, else this; None: half of
    # max_pending_jobs (`pending_per_queue`).
    max_pending_jobs_per_queue: int | None = None
    # The same for one owner across every queue they submit to (the user the federator records; a FederatedJob
    # made with kubectl has none, and its namespace stands for it), so that one tenant cannot get past the
    # queue's cap by spreading over queues of its own invention. None: half of max_pending_jobs, like a queue's
    # default and for the same reason (`pending_per_user`); never the per-queue flag, which would then bound
    # every caller of an insecure federator (all of them the one user 'anonymous') together.
    max_pending_jobs_per_user: int | None = None
    # Bytes of specs (as the store writes them, store/codec.py `spec_bytes`) of unfinished jobs (pending, placed,
    # running: server/job_bytes.py): every cap above counts jobs, and 300 near-limit jobs of one user took 195 MB
    # of RAM and 221 MB of disk, so the 125,000 a user may have pending could take ~80 GB. Past either budget
    # Submit answers RESOURCE_EXHAUSTED with a retry-after, as for the counts. A user's: 256 MiB, room for ~60,000
    # jobs of a typical 4 KiB spec (examples/jobs weigh 0.4 to 0.9 KiB) and 256 of the largest a 1 MiB message
    # carries, so ordinary work never meets it while one user holds at most ~0.3 GB of the host (measured: ~0.9
    # bytes of RAM per stored byte). The federator's: 4 GiB, sixteen users at their budget, or the 250,000
    # pending jobs of --max-pending-jobs at ~16 KiB each; a host sized for the federator has that to give.
    max_unfinished_bytes: int = 4 << 30
    max_unfinished_bytes_per_user: int = 256 << 20
    queue_full_retry_seconds: float = 5.0
    # What a job's pod templates may ask of a member's nodes (security/podsecurity.py; --pod-security).
    pod_security: PodSecurity = PodSecurity()
    # Clusters of one provider connected at once (0: no cap). A provider's CA may certify any number of
    # cluster names, and every connected cluster costs the federator its reports: past the cap a Hello is
    # refused (RESOURCE_EXHAUSTED), so one provider cannot crowd out the others' clusters.
    max_clusters_per_provider: int = 64
    # Watch streams one user holds open at once (0: no cap; server/watch_stream.py): 40 watch-all streams slowed
    # every call of a 2-CPU federator tenfold (outside QA, portal m9), and a client that opens a stream per
    # reconnect without closing the last would hold them all. With --insecure every caller is 'anonymous'.
    max_watches_per_user: int = 32
    # Watch streams open at once in all, every user's (0: no cap; server/watch_seats.py; the last tenth is kept for
    # users holding none). The per-user cap bounds one user, not a thousand organisations' users. An open stream
    # holds 0.1-0.2 MiB (its frame, the digests of its last sends: docs/benchmarks.md "Watch streams") and every
    # change wakes it to read the shared history, so 1,000 hold at most ~0.2 GiB, the size of a 100,000-job
    # backlog, and a change costs the loop one read per stream. 1,000 is a portal's Watch for each of a thousand
    # organisations, or the CLI watches of as many people at once; a bigger host raises it.
    max_watches: int = 1_000
    # `federator logs --follow` streams (JobService.FollowLogs) one user may hold open, and all users together
    # (0: no cap; server/log_follow.py). Each asks every cluster its job ran on for new output every 2 s: a
    # member's API server reads each replica's log for it, so the cap bounds what users make members do, not
    # the federator's memory (a follow holds a cursor per replica).
    max_log_follows_per_user: int = 4
    max_log_follows: int = 200

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "report_burst", "job_update_burst", "max_replicas_per_job",
                     "max_accelerators_per_job", "max_cpu_cores_per_job", "max_memory_bytes_per_job", "max_labels",
                     "max_pending_jobs",
                     "max_unfinished_bytes", "max_unfinished_bytes_per_user"):
            if getattr(self, name) < 1:
                raise ValueError(f"limits.{name}: must be at least 1, got {getattr(self, name)!r}")
        for name in ("max_pending_jobs_per_queue", "max_pending_jobs_per_user"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"limits.{name}: must be at least 1, got {getattr(self, name)!r}")
        if self.report_bytes_per_second < 0:
            raise ValueError("limits.report_bytes_per_second: must be 0 (no budget) or more, "
                             f"got {self.report_bytes_per_second!r}")
        if self.max_watches < 0:
            raise ValueError(f"limits.max_watches: must be 0 (no cap) or more, got {self.max_watches!r}")
        for name in ("max_log_follows", "max_log_follows_per_user"):
            if getattr(self, name) < 0:
                raise ValueError(f"limits.{name}: must be 0 (no cap) or more, got {getattr(self, name)!r}")
        if self.max_watches_per_user < 0:
            raise ValueError("limits.max_watches_per_user: must be 0 (no cap) or more, "
                             f"got {self.max_watches_per_user!r}")
        if self.max_clusters_per_provider < 0:
            raise ValueError("limits.max_clusters_per_provider: must be 0 (no cap) or more, "
                             f"got {self.max_clusters_per_provider!r}")
        if self.max_message_bytes > MAX_MESSAGE_BYTES_CEILING:  # gRPC takes the size as a C int
            raise ValueError(f"limits.max_message_bytes: must be at most {MAX_MESSAGE_BYTES_CEILING} (1 GiB), "
                             f"got {self.max_message_bytes!r}")
        if not self.queue_full_retry_seconds > 0:
            raise ValueError("limits.queue_full_retry_seconds: must be positive, "
                             f"got {self.queue_full_retry_seconds!r}")
        if not self.reports_per_second > 0:
            raise ValueError(f"limits.reports_per_second: must be positive, got {self.reports_per_second!r}")
        if not self.job_updates_per_second > 0:
            raise ValueError(f"limits.job_updates_per_second: must be positive, got {self.job_updates_per_second!r}")

    @property
    def pending_per_queue(self) -> int:
        """The pending jobs a queue without a cap of its own may hold: the flag's, else half the federator's
        (no one queue can then refuse all the others, and a federation of one queue keeps most of its room)."""
        return self._or_half(self.max_pending_jobs_per_queue)

    @property
    def pending_per_user(self) -> int:
        """The pending jobs one owner may hold over all their queues: the flag's, else half the federator's, as for
        a queue (no one user can then refuse all the others, and a single-user federation, or an insecure one
        whose callers are all 'anonymous', keeps the room one queue has)."""
        return self._or_half(self.max_pending_jobs_per_user)

    @property
    def max_job_text_bytes(self) -> int:
        """The most a job's JSON texts (pod_template_json, workload_json, the alternatives' templates) may weigh in
        all: half the message limit, 512 KiB by default. A 0.88 MB template was taken, and 200 of them grew the
        federator by 190 MB; a FederatedJob carries them, and the API server stores no object past ~1.5 MB.
        Real templates are a few KiB; an operator who raises --max-message-bytes raises this with it."""
        return self.max_message_bytes // 2

    def _or_half(self, cap: int | None) -> int:
        """A tenant's cap as given, else half the federator's: one default for a queue and a user."""
        return cap if cap is not None else max(1, self.max_pending_jobs // 2)

    def check_job(self, spec: JobSpec) -> str | None:
        """None if the job is within limits, else what is over, naming the field."""
        texts = [("spec.template", len(spec.pod_template_json.encode())),
                 ("spec.workload", len(spec.workload_json.encode())),
                 *((f"spec.accelerators[{i}].template", len(a.pod_template_json.encode()))
                   for i, a in enumerate(spec.accelerators))]
        weight = sum(size for _, size in texts)
        if weight > self.max_job_text_bytes:
            field, size = max(texts, key=lambda t: t[1])
            return (f"{field}: {size} bytes; a job's pod templates and workload together may be at most "
                    f"{self.max_job_text_bytes} bytes (half of --max-message-bytes), this one's are {weight}")
        total = spec.total
        if spec.replicas > self.max_replicas_per_job:
            return f"spec.replicas: {spec.replicas} is over this federator's limit of {self.max_replicas_per_job}"
        most = max((a.milli for a in spec.alternatives()), default=0) * spec.replicas
        if most > self.max_accelerators_per_job * 1000:
            field = "spec.accelerators" if spec.accelerators else "spec.resources.nvidia.com/gpu"
            return (f"{field}: the job asks for {most / 1000:g} accelerators in all, "
                    f"over this federator's limit of {self.max_accelerators_per_job}")
        if total.cpu_milli > self.max_cpu_cores_per_job * 1000:
            return (f"spec.resources.cpu: the job asks for {total.cpu_milli / 1000:g} cores in all, "
                    f"over this federator's limit of {self.max_cpu_cores_per_job}")
        if total.memory_bytes > self.max_memory_bytes_per_job:
            return (f"spec.resources.memory: the job asks for {total.memory_bytes} bytes in all, "
                    f"over this federator's limit of {self.max_memory_bytes_per_job}")
        return None

    def check_size(self, what: str, size: int) -> str | None:
        if size > self.max_message_bytes:
            return f"{what}: message of {size} bytes is over the limit of {self.max_message_bytes} bytes"
        return None


def check_capacity(cap: ClusterCapacity) -> str | None:
    """None if a capacity report is plausible, else the problem, naming the field.

    The wire decoder already refuses negative counts; this refuses what would
    make the scheduler's work grow without bound or its arithmetic meaningless.
    """
    if len(cap.accelerator_pools) > MAX_POOLS:
        return f"capacity.accelerator_pools: at most {MAX_POOLS} accelerator models, got {len(cap.accelerator_pools)}"
    if len(cap.placement_ids) > MAX_PLACEMENT_IDS:
        return f"capacity.placement_ids: at most {MAX_PLACEMENT_IDS}, got {len(cap.placement_ids)}"
    models: dict[str, str] = {}  # model -> its pool's vendor
    for i, pool in enumerate(cap.accelerator_pools):
        where = f"capacity.accelerator_pools[{i}]"
        if pool.accelerator_model in models:  # pools are keyed by (vendor, model); a model belongs to one vendor
            return (f"{where}.accelerator_model: {pool.accelerator_model[:80]!r} is listed twice (vendors "
                    f"{models[pool.accelerator_model][:63]} and {pool.vendor[:63]}): one pool per model name")
        models[pool.accelerator_model] = pool.vendor
        if len(pool.vendor) > 63 or len(pool.resource_name) > 253:
            return f"{where}.vendor: at most 63 characters (resource_name at most 253)"
        if len(pool.nodes_by_free) > MAX_ACCELERATORS_PER_NODE + 1:
            return f"{where}.nodes_by_free: at most {MAX_ACCELERATORS_PER_NODE + 1} entries (accelerators per node)"
        if pool.largest_node_accelerators > MAX_ACCELERATORS_PER_NODE:
            return (f"{where}.largest_node_accelerators: at most {MAX_ACCELERATORS_PER_NODE} accelerators per node, "
                    f"got {pool.largest_node_accelerators}")
        if pool.nodes > MAX_NODES:
            return f"{where}.nodes_by_free: more than {MAX_NODES} nodes"
        if pool.total_accelerators < 0 or pool.allocatable_accelerators < 0:
            return f"{where}.total_accelerators: accelerator counts must not be negative"
    return None


_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")  # Kubernetes' rule for label values
LABEL_KEY = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")  # Kubernetes' for keys


REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region", "federator.io/region")
"""Cluster labels that name a region. The scheduler places by the Hello's region (which a trust file may bind to a
provider's regions); a label naming another would tell people and tools reading the cluster's labels (`federator
get clusters`, MemberCluster objects, dashboards) a region the federator does not place by, so a Hello whose
region label disagrees with its region is refused (check_hello)."""


def valid_region(name: str) -> bool:
    """Whether a Hello may give this region (check_hello); the trust file's `regions` are held to the same."""
    return bool(_NAME.match(name))


def valid_cluster_name(name: str) -> bool:
    """Whether a Hello may give this cluster name; a cordon's (server/cordons.py) is held to the same."""
    return bool(_NAME.match(name))


def check_hello(cluster: str, region: str, labels: Mapping[str, str], *, limits: Limits) -> str | None:
    """None if a Hello is well formed, else the problem, naming the field."""
    if not valid_cluster_name(cluster):
        return f"hello.cluster: must be a lower-case DNS name of at most 63 characters, got {cluster[:80]!r}"
    if not valid_region(region):
        return f"hello.region: must be a lower-case DNS name of at most 63 characters, got {region[:80]!r}"
    if len(labels) > limits.max_labels:
        return f"hello.labels: at most {limits.max_labels} labels, got {len(labels)}"
    for key, value in labels.items():
        if not LABEL_KEY.match(key):
            return f"hello.labels: {key[:80]!r} is not a valid label key"
        if len(value) > 253:
            return f"hello.labels[{key}]: value longer than 253 characters"
        if not value.isprintable():
            return f"hello.labels[{key}]: value must be printable text (no line breaks or control characters)"
        if key in REGION_LABELS and value != region:  # one region per cluster: the one the scheduler places by
            return (f"hello.labels[{key}]: {value[:80]!r} is not the cluster's region {region!r} (hello.region); "
                    "a region label must name the region the agent gives, or be left out")
        if key in PRICE_LABELS and parse_price(value) is None:  # the Price score reads it: refused now, not misread
            return f"hello.labels[{key}]: must be a decimal number of at least 0 (such as 4.10), got {value[:80]!r}"
    try:
        policy_of_labels(labels)  # the scheduler's PodSecurity filter reads these: refused now, not misread then
    except ValueError as exc:  # "federator.io/pod-security: must be ...": named as every other label's problem is
        key, said, rest = str(exc).partition(": ")
        return f"hello.labels[{key}]: {rest}" if said and key in labels else f"hello.labels: {exc}"
    return None


@dataclass(slots=True)
class TokenBucket:
    """`rate` events per second on average, `burst` at once; take() says whether one more may pass."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _at: float = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)
        self._at = self.clock()

    def take(self, amount: float = 1.0) -> bool:
        """Whether `amount` (at most `burst`) may pass now; if so it is taken."""
        self._refill()
        if self._tokens >= amount:
            self._tokens -= amount
            return True
        return False

    def charge(self, amount: float) -> None:
        """Take `amount` whatever is left: the bucket may go into debt, which later take()s wait out."""
        self._refill()
        self._tokens -= amount

    def wait(self, amount: float = 1.0) -> float:
        """Seconds until take(amount) would pass (0 if it would now)."""
        self._refill()
        return max(0.0, (amount - self._tokens) / self.rate)

    def _refill(self) -> None:
        now = self.clock()  # a wall clock stepped back refills nothing, and takes nothing either
        self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._at) * self.rate)
        self._at = now


__all__ = ["LABEL_KEY", "LABEL_VALUE", "REGION_LABELS", "Limits", "RejectReason", "TokenBucket", "check_capacity",
           "check_hello", "valid_cluster_name", "valid_region"]
