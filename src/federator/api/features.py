"""The API features this federator serves, by the names IdentityService.WhoAmI reports.

Why: a client written against a newer proto than its federator had no way to
learn what the server does: a field the server does not know is dropped
silently, so an option the user chose was ignored (outside portal QA, M4).
A client tests these names instead and hides what is missing.

Naming: `area.feature`, lower case (`jobs.`, `clusters.`, `usage.`,
`identity.`, `queues.`, `watch.`, `list.`). A name is added with the change that serves
the feature (add a constant here and put it in `FEATURES`); it is never
renamed nor reused for something else, and removed only with the feature.
"""

from __future__ import annotations

JOBS_REQUEST_ID = "jobs.request_id"  # SubmitRequest.request_id: a retried Submit returns the job it made
JOBS_RUN_AGAIN = "jobs.run_again"  # SubmitRequest.run_again: reuse a finished job's name
JOBS_SCALE = "jobs.scale"  # JobService.Scale of a serving job
JOBS_WATCH = "jobs.watch"  # JobService.Watch: a snapshot, then changes
JOBS_WATCH_RESUME = "jobs.watch_resume"  # WatchJobsRequest.send_bookmarks and since_revision: revisions, resume
JOBS_WATCH_BATCHES = "jobs.watch_batches"  # JobService.WatchBatches: Watch's stream, many jobs a message (0.18.0)
JOBS_LIST_FILTERS = "jobs.list_filters"  # ListJobsRequest.filter and order, echoed in applied_filter/applied_order
JOBS_CANCEL_BULK = "jobs.cancel_bulk"  # JobService.CancelJobs: a queue's jobs a filter takes, in one call
JOBS_CANCEL_BULK_SELECT = "jobs.cancel_bulk_select"  # CancelJobsRequest.name_prefix and all_queues, since 0.15.0
JOBS_SUBMIT_VALIDATE_ONLY = "jobs.submit_validate_only"  # SubmitRequest.validate_only: checked, not stored (0.15.0)
# SubmitRequest.validate_only with array: the array's checks and one task's (0.16.0)
JOBS_SUBMIT_VALIDATE_ONLY_ARRAY = "jobs.submit_validate_only_array"
# ListJobsFilter.label_selector and CancelJobsRequest.label_selector: kubectl's -l (0.17.0)
JOBS_LABEL_SELECTOR = "jobs.label_selector"
JOBS_LOGS = "jobs.logs"  # JobService.Logs: the tail of a job's output, read by its members' agents
JOBS_LOGS_FOLLOW = "jobs.logs_follow"  # JobService.FollowLogs: a job's output as it is written, since 0.15.0
# JobSpec.clusters: a job bounded to clusters by name and by their labels (spec.clusters), since 0.17.0
JOBS_CLUSTER_AFFINITY = "jobs.cluster_affinity"
# ClusterAffinity.same_as: a job placed only where named jobs hold a placement (spec.clusters.sameAs), since 0.19.0
JOBS_CLUSTER_SAME_AS = "jobs.cluster_same_as"
# JobSpec.failure_policy: a job placed again after it fails, up to spec.failurePolicy.maxRestarts times, since 0.18.0
JOBS_FAILURE_POLICY = "jobs.failure_policy"
# JobSpec.region_weights and JobSpec.prefer: static weights per region and the cheapest place, since 0.19.0
JOBS_PLACEMENT_ASKS = "jobs.placement_asks"
# JobSpec.pod_sets: a brought workload's unequal roles held and billed at what each asks, since 0.20.0
JOBS_POD_SETS = "jobs.pod_sets"
# JobSpec.min_replicas: an elastic training gang started at what fits from its minimum to its size, since 0.21.0
JOBS_MIN_REPLICAS = "jobs.min_replicas"
CLUSTERS_VIEW_FULL = "clusters.view_full"  # ClusterService.List with CLUSTER_VIEW_FULL
CLUSTERS_CORDON = "clusters.cordon"  # ClusterService.Cordon and Uncordon
CLUSTERS_DRAIN = "clusters.drain"  # ClusterService.Drain
CLUSTERS_DRAIN_DRY_RUN = "clusters.drain_dry_run"  # DrainClusterRequest.dry_run, and no_room_elsewhere in the reply
CLUSTERS_DRAIN_SURGE_SECONDS = "clusters.drain_surge_seconds"  # DrainClusterRequest.surge_seconds, per drain
CLUSTERS_FORGET = "clusters.forget"  # ClusterService.Forget
CLUSTERS_CANCEL_ORPHANS = "clusters.cancel_orphans"  # ClusterService.CancelOrphans, since 0.16.0
USAGE = "usage.get"  # UsageService.Get
QUEUES_LIST = "queues.list"  # QueueService.List: each queue's standing (federator get queues), since 0.14.0
IDENTITY_WHOAMI = "identity.whoami"  # IdentityService.WhoAmI
IDENTITY_DELEGATION = "identity.delegation"  # x-federator-on-behalf-of (tenancy.delegates)

FEATURES: tuple[str, ...] = (
    JOBS_REQUEST_ID, JOBS_RUN_AGAIN, JOBS_SCALE, JOBS_WATCH, JOBS_WATCH_RESUME, JOBS_LIST_FILTERS,
    JOBS_CANCEL_BULK, JOBS_CANCEL_BULK_SELECT, JOBS_SUBMIT_VALIDATE_ONLY, JOBS_LOGS, JOBS_LOGS_FOLLOW,
    JOBS_SUBMIT_VALIDATE_ONLY_ARRAY, JOBS_LABEL_SELECTOR, JOBS_CLUSTER_AFFINITY, JOBS_FAILURE_POLICY,
    JOBS_WATCH_BATCHES, JOBS_PLACEMENT_ASKS, JOBS_CLUSTER_SAME_AS, JOBS_POD_SETS, JOBS_MIN_REPLICAS,
    CLUSTERS_VIEW_FULL, CLUSTERS_CORDON, CLUSTERS_DRAIN, CLUSTERS_FORGET, CLUSTERS_DRAIN_DRY_RUN,
    CLUSTERS_DRAIN_SURGE_SECONDS, CLUSTERS_CANCEL_ORPHANS,
    USAGE, IDENTITY_WHOAMI, IDENTITY_DELEGATION, QUEUES_LIST,
)
"""Every feature served, in the order WhoAmI lists them."""

__all__ = ["CLUSTERS_CANCEL_ORPHANS", "CLUSTERS_CORDON", "CLUSTERS_DRAIN", "CLUSTERS_DRAIN_DRY_RUN",
           "CLUSTERS_DRAIN_SURGE_SECONDS", "CLUSTERS_FORGET", "CLUSTERS_VIEW_FULL", "FEATURES",
           "IDENTITY_DELEGATION",
           "IDENTITY_WHOAMI", "JOBS_CANCEL_BULK", "JOBS_CANCEL_BULK_SELECT", "JOBS_CLUSTER_AFFINITY",
           "JOBS_CLUSTER_SAME_AS",
           "JOBS_FAILURE_POLICY", "JOBS_MIN_REPLICAS", "JOBS_PLACEMENT_ASKS", "JOBS_POD_SETS",
           "JOBS_LABEL_SELECTOR", "JOBS_LIST_FILTERS", "JOBS_LOGS",
           "JOBS_LOGS_FOLLOW",
           "JOBS_REQUEST_ID", "JOBS_RUN_AGAIN",
           "JOBS_SCALE", "JOBS_SUBMIT_VALIDATE_ONLY", "JOBS_SUBMIT_VALIDATE_ONLY_ARRAY", "JOBS_WATCH",
           "JOBS_WATCH_BATCHES", "JOBS_WATCH_RESUME", "QUEUES_LIST", "USAGE"]
