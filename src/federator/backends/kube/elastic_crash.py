"""An elastic gang whose replicas all fail at its start ends there, Failed, as a whole gang does.

Why: a gang's Job has `backoffLimit: 0`, so a job that crashes on its first step fails in seconds and the federator
places it once more elsewhere (server/early_failures.py: a bad node or cluster may be the fault). An elastic gang's
Job retries its pods (3 per placed replica, workloads/elastic.py) with the Job controller's backoff, 10 s doubling
per failure: 2 replicas of a bad image crash-looped 7 minutes on 16 accelerators, reading Running, then failed
after the early-failure window, for good (outside QA, elasticqa63 6). The retries are for a lost worker, and a
lost worker is one pod, not all of them at once.

The rule (`crashed_at_start`): the federator's own Job of an elastic gang (annotated `ELASTIC_ANNOTATION` by
workloads/elastic.py; a brought workload's retries are its user's) ended as a whole when, within
`CRASH_WINDOW_SECONDS` of the Job's start, as many of its pods failed as it has replicas, and none succeeded. A
torchrun that loses a peer restarts its workers in place (PET_MAX_RESTARTS), so its pod fails only when its own
process, node or rendezvous host is gone, or its restarts are spent: one replica's failure is what the Job retries
for; every replica's, that early, is the job's code or its node. The agent then reports the placement Failed with
the first pod's words and deletes the Job (backend: `PlacementPhases._refresh`), so the federator's early-failure
rule places it once more, elsewhere, within seconds, as it does a whole gang. The window is the federator's
default `--early-failure-seconds`: the agent does not know the federator's, and a crash past it is a late failure
either way. Later, the Job's retries stand: a replica lost at hour 30 is replaced and rejoins.

Pure: the Job as the API server has it, and the time now, in; why it crashed ("" if it did not) out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.backends.kube.pod_faults import api_seconds

ELASTIC_ANNOTATION = "federator.io/elastic"
"""On the federator's own Job of an elastic gang: torchrun's range, "MIN:MAX" (workloads/elastic.py)."""
CRASH_WINDOW_SECONDS = 300.0
"""As the federator's default --early-failure-seconds (server/early_failures.py)."""


def crashed_at_start(job: Mapping[str, Any], now: float, *, window: float = CRASH_WINDOW_SECONDS) -> str:
    """Why the elastic gang's Job `job` crashed as a whole at its start ("" if it did not, or is no such Job)."""
    meta = job.get("metadata") or {}
    if ELASTIC_ANNOTATION not in (meta.get("annotations") or {}):
        return ""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    placed = int(spec.get("parallelism") or 1)
    failed = int(status.get("failed") or 0)
    if failed < placed or int(status.get("succeeded") or 0):
        return ""
    started = api_seconds(status.get("startTime"))
    if started is None or now - started > window:
        return ""
    return (f"all {placed} replicas failed within {window:.0f}s of the start ({failed} pods failed): the gang "
            "crashes as a whole, not for a lost worker, so its Job's retries are stopped")


__all__ = ["CRASH_WINDOW_SECONDS", "ELASTIC_ANNOTATION", "crashed_at_start"]
