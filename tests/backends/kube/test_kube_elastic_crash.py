"""When an elastic gang's Job has crashed as a whole at its start (elastic_crash.py; elasticqa63 6)."""

from __future__ import annotations

from typing import Any

from federator.backends.kube.elastic_crash import ELASTIC_ANNOTATION, crashed_at_start
from federator.backends.kube.pod_faults import api_seconds

START = "2026-12-07T22:56:36Z"
T0 = api_seconds(START) or 0.0


def job(*, failed: int, succeeded: int = 0, placed: int = 2, elastic: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": "j", "annotations": {ELASTIC_ANNOTATION: "2:3"} if elastic else {}},
            "spec": {"parallelism": placed, "completions": placed, "backoffLimit": 3 * placed},
            "status": {"startTime": START, "failed": failed, "succeeded": succeeded, "active": placed}}


def test_every_replica_failing_at_the_start_is_a_crash_of_the_gang() -> None:
    why = crashed_at_start(job(failed=2), T0 + 25)
    assert "all 2 replicas failed within 300s of the start (2 pods failed)" in why


def test_one_lost_worker_or_a_late_loss_is_the_jobs_to_retry() -> None:
    assert crashed_at_start(job(failed=1), T0 + 25) == ""  # one replica: what the retries are for
    assert crashed_at_start(job(failed=2), T0 + 301) == ""  # past the window: a late failure, retried in place
    assert crashed_at_start(job(failed=4, succeeded=1), T0 + 25) == ""  # a replica finished: it ran
    assert crashed_at_start(job(failed=2, elastic=False), T0 + 25) == ""  # not ours to cut short (brought, a gang)
    unstarted = job(failed=2)
    del unstarted["status"]["startTime"]
    assert crashed_at_start(unstarted, T0 + 25) == ""
