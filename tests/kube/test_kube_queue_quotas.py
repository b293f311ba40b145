"""Queue objects set the scheduler's queues: a quota applied with kubectl holds jobs back, raising it lets them go."""

from __future__ import annotations

from typing import Any

import pytest

from kube_support import H100, Kube, h100_job_yaml, queue_yaml
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]


def _valid(kube: Kube, name: str) -> dict[str, Any]:
    """The Queue's Valid condition, once the federator has seen its current generation ({} until then)."""
    obj = kube.json("host", "get", "queue", name)
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Valid"), {})


def _table_row(table: str) -> dict[str, str]:
    """kubectl's one-row table by column position (an empty cell would shift a split())."""
    header, row = table.splitlines()[:2]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    ends = [*starts[1:], None]
    return {header[a:b].strip(): row[a:b].strip() for a, b in zip(starts, ends, strict=True)}


def _pending_reason(kube: Kube, name: str) -> dict[str, Any]:
    return ((kube.fj(name) or {}).get("status") or {}).get("pendingReason") or {}


def test_a_queue_quota_holds_the_second_job_until_it_is_raised(kube: Kube) -> None:
    queue = "quota-team"
    kube.kubectl("host", "apply", "-f", "-", input=queue_yaml(queue, {"weight": 1, "quota": {"gpus": {"H100": 8}}}))
    try:
        eventually(lambda: _valid(kube, queue).get("status") == "True", timeout=60,
                   what=lambda: f"Queue {queue} accepted\n{kube.logs()}")
        kube.kubectl("host", "apply", "-f", "-", input=h100_job_yaml("quota-first", queue))
        eventually(lambda: kube.phase("quota-first") in ("Placed", "Running"), timeout=120,
                   what=lambda: f"quota-first placed\n{kube.logs()}")

        kube.kubectl("host", "apply", "-f", "-", input=h100_job_yaml("quota-second", queue))
        eventually(lambda: _pending_reason(kube, "quota-second").get("code") == "QuotaExceeded", timeout=60,
                   what=lambda: f"quota-second held by the quota ({_pending_reason(kube, 'quota-second')})")
        assert kube.phase("quota-second") == "Pending"
        assert f"quota of queue {queue} on H100" in _pending_reason(kube, "quota-second")["message"]
        row = _table_row(kube.kubectl("host", "get", "fj", "quota-second", "-o", "wide").stdout)
        assert (row["QUEUE"], row["PHASE"], row["REASON"]) == (queue, "Pending", "QuotaExceeded")
        assert f"quota of queue {queue}" in row["MESSAGE"]

        def usage() -> tuple[Any, ...]:
            status = kube.json("host", "get", "queue", queue).get("status") or {}
            return status.get("acceleratorsInUse"), status.get("pendingJobs"), status.get("runningJobs")

        eventually(lambda: usage() == ({H100: 8}, 1, 1), timeout=60, what=lambda: f"the Queue's usage ({usage()})")

        # Raise the quota with kubectl: the waiting job goes, with no restart.
        raised = queue_yaml(queue, {"weight": 1, "quota": {"gpus": {"H100": 16}}})
        kube.kubectl("host", "apply", "-f", "-", input=raised)
        eventually(lambda: kube.phase("quota-second") in ("Placed", "Running"), timeout=120,
                   what=lambda: f"quota-second placed after the raise\n{kube.logs()}")
        eventually(lambda: usage() == ({H100: 16}, 0, 2), timeout=60, what=lambda: f"the Queue's usage ({usage()})")
    finally:
        kube.kubectl("host", "delete", "fj", "quota-first", "quota-second", "--timeout=60s", "--ignore-not-found",
                     check=False)
        kube.kubectl("host", "delete", "queue", queue, "--ignore-not-found", check=False)


def test_a_queue_the_validator_refuses_is_reported_and_ignored(kube: Kube) -> None:
    """The schema lets `memory: 500m` through; the policy validator refuses it, naming the field, and the
    federator keeps running with the policy file's queue."""
    queue = "bad-quota"
    kube.kubectl("host", "apply", "-f", "-", input=queue_yaml(queue, {"quota": {"memory": "500m"}}))
    try:
        eventually(lambda: _valid(kube, queue).get("status") == "False", timeout=60,
                   what=lambda: f"Queue {queue} refused\n{kube.logs()}")
        message = _valid(kube, queue)["message"]
        assert message.startswith(f"Queue {queue}: spec.quota.memory:"), message
        wide = kube.kubectl("host", "get", "queue", queue, "-o", "wide").stdout
        assert "False" in wide and "spec.quota.memory" in wide

        # Ignored, not fatal: a job in that queue is scheduled as if the Queue were not there.
        kube.kubectl("host", "apply", "-f", "-", input=h100_job_yaml("bad-quota-job", queue))
        eventually(lambda: kube.phase("bad-quota-job") in ("Placed", "Running"), timeout=120,
                   what=lambda: f"bad-quota-job placed\n{kube.logs()}")

        # Fixed in place: accepted, with no restart.
        kube.kubectl("host", "apply", "-f", "-", input=queue_yaml(queue, {"quota": {"memory": "64Gi"}}))
        eventually(lambda: _valid(kube, queue).get("status") == "True", timeout=60, what=f"Queue {queue} accepted")
    finally:
        kube.kubectl("host", "delete", "fj", "bad-quota-job", "--timeout=60s", "--ignore-not-found", check=False)
        kube.kubectl("host", "delete", "queue", queue, "--ignore-not-found", check=False)


def test_a_deleted_queue_holds_its_quota_until_its_unfinished_jobs_end(kube: Kube) -> None:
    """Outside QA G5: a GitOps prune of a Queue (an app moved or renamed) lifted its quota at once, and its waiting
    job was placed over it. The finalizer federator.io/queue-in-use holds the deleted Queue, Terminating, its
    quota in force, until the jobs of its queue end; then it goes."""
    queue = "pruned-team"
    kube.kubectl("host", "apply", "-f", "-", input=queue_yaml(queue, {"weight": 1, "quota": {"gpus": {"H100": 8}}}))
    jobs = ("pruned-first", "pruned-second")
    try:
        eventually(lambda: _valid(kube, queue).get("status") == "True", timeout=60,
                   what=lambda: f"Queue {queue} accepted\n{kube.logs()}")
        eventually(lambda: kube.json("host", "get", "queue", queue)["metadata"].get("finalizers") ==
                   ["federator.io/queue-in-use"], timeout=60, what="the Queue's finalizer")
        kube.kubectl("host", "apply", "-f", "-", input=h100_job_yaml(jobs[0], queue))
        eventually(lambda: kube.phase(jobs[0]) in ("Placed", "Running"), timeout=120,
                   what=lambda: f"{jobs[0]} placed\n{kube.logs()}")
        kube.kubectl("host", "apply", "-f", "-", input=h100_job_yaml(jobs[1], queue))
        eventually(lambda: _pending_reason(kube, jobs[1]).get("code") == "QuotaExceeded", timeout=60,
                   what=lambda: f"{jobs[1]} held by the quota")

        kube.kubectl("host", "delete", "queue", queue, "--wait=false")

        def terminating() -> dict[str, Any]:
            status = kube.json("host", "get", "queue", queue).get("status") or {}
            return next((c for c in status.get("conditions") or [] if c["type"] == "Terminating"), {})

        held = eventually(terminating, timeout=60, what=lambda: f"the Queue held\n{kube.logs()}")
        assert held["status"] == "True" and "held by its 1 pending and 1 running jobs" in held["message"]
        assert kube.phase(jobs[1]) == "Pending" and _pending_reason(kube, jobs[1])["code"] == "QuotaExceeded"

        kube.kubectl("host", "delete", "fj", jobs[0], "--timeout=60s")  # the quota frees: the second goes
        eventually(lambda: kube.phase(jobs[1]) in ("Placed", "Running"), timeout=120,
                   what=lambda: f"{jobs[1]} placed under the held quota\n{kube.logs()}")
        assert kube.kubectl("host", "get", "queue", queue, "--ignore-not-found").stdout.strip()
        kube.kubectl("host", "delete", "fj", jobs[1], "--timeout=60s")
        eventually(lambda: not kube.kubectl("host", "get", "queue", queue, "--ignore-not-found").stdout.strip(),
                   timeout=60, what="the Queue gone once its jobs ended")
    finally:
        kube.kubectl("host", "delete", "fj", *jobs, "--timeout=60s", "--ignore-not-found", check=False)
        kube.kubectl("host", "delete", "queue", queue, "--ignore-not-found", check=False)
