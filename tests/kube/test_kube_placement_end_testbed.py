"""A Kubernetes-mode restart bills a placement to its end, as the standalone one does, against a real API server.

A placement's end (Placement.ended_at: its agent's JobUpdate.ended_at as checked) was not in the FederatedJob
status, so a federator that started on the objects read every ended placement as ended "when not known": a usage
record still open at the restart (its close refused by a full disk before the restart) was closed at the restart,
where the standalone store, which keeps the end with the job, closed it at the end. Here the status is the one the
real kube-apiserver stored through the CRD's status schema (a field the schema lacks is pruned without a word),
read back by a new federator; the standalone store goes through the same steps beside it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from federator.accounting import SqliteUsageStore, UsageMeter, UsageRecord, attach
from federator.backends.kube.api import FEDERATED_JOBS, KubeApi
from federator.backends.kube.store import KubeJobStore
from federator.jobfile import parse_job
from federator.metrics import Metrics
from federator.model import JobPhase
from federator.server.federator import Federator
from federator.store import JobStore, SqliteJobStore

from builders import cluster, pool
from kube_support import Clock, Testbed, host_bed

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "billing"
H100 = "NVIDIA-H100-80GB-HBM3"
T0 = 1_800_000_000.0  # placed; Running from T0 + 10; ended at T0 + 40, heard of at T0 + 300; restarted at T0 + 900


host = host_bed(NAMESPACE)


def metered(store: JobStore, usage: SqliteUsageStore, clock: Clock) -> Federator:
    fed = Federator(store=store, metrics=Metrics(), clock=clock)
    attach(fed, UsageMeter(usage, metrics=fed.metrics, clock=clock))
    return fed


def bill_across_a_restart(make_store: Callable[[Clock], JobStore], usage_db: Path) -> UsageRecord:
    """A job runs from T0 + 10 and ends at T0 + 40 (heard at T0 + 300) while the usage records refuse writes; the
    federator restarts at T0 + 900 on the same job store. Its placement's usage record as the restart closes it."""
    clock = Clock(T0)
    usage = SqliteUsageStore(usage_db)
    fed = metered(make_store(clock), usage, clock)
    rec = fed.connect(cluster="east", region="east", labels={})
    fed.report(rec, cluster("east", "east", pool(H100, nodes=1)).capacity)
    job = fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                "metadata": {"name": "train", "namespace": NAMESPACE},
                                "spec": {"kind": "training", "replicas": 1,
                                         "resources": {"cpu": "1", "nvidia.com/gpu": 8}}}))
    fed.schedule_once()
    (p,) = job.placements
    clock.now = T0 + 10
    fed.report(rec, replace(cluster("east", "east", pool(H100, nodes=1)).capacity,
                            placement_ids=frozenset({p.placement_id})))
    fed.job_update(rec, p.placement_id, JobPhase.RUNNING, "")

    def full(records: list[UsageRecord]) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    usage.put = full  # type: ignore[method-assign]
    clock.now = T0 + 300
    fed.job_update(rec, p.placement_id, JobPhase.SUCCEEDED, "done", ended_at=T0 + 40)
    assert job.phase is JobPhase.SUCCEEDED
    fed.journal.drain()
    usage.close()  # the process ends: the record's end the disk refused goes with it
    fed.store.close()

    clock.now = T0 + 900
    usage = SqliteUsageStore(usage_db)
    fed = metered(make_store(clock), usage, clock)
    (loaded,) = fed.jobs.values()
    assert [q.ended_at for q in loaded.placements] == [pytest.approx(T0 + 40, abs=1e-6)]
    (record,) = usage.query(since=0.0, until=T0 + 1_000)
    usage.close()
    fed.store.close()
    return record


def test_a_kubernetes_mode_restart_bills_a_placement_to_its_end_as_the_standalone_one(
        host: Testbed, tmp_path: Path) -> None:
    api = KubeApi.connect(host.host.kubeconfig)
    kube = bill_across_a_restart(lambda clock: KubeJobStore(api, namespace=NAMESPACE, clock=clock),
                                 tmp_path / "kube-usage.db")
    (stored,) = api.list(FEDERATED_JOBS, NAMESPACE)["items"]
    assert [q.get("endedAt") for q in stored["status"]["placements"]] == ["2027-01-15T08:00:40.000000Z"]
    standalone = bill_across_a_restart(lambda clock: SqliteJobStore(tmp_path / "federator.db"),
                                       tmp_path / "federator.db")
    assert (kube.start, kube.end) == (standalone.start, standalone.end) == (T0 + 10, T0 + 40)
