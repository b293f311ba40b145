"""Metric labels stay bounded: a queue label fed by a thousand organisations' queue names keeps
LABEL_LIMIT of them and reports the rest as `other`, in every metric that has the label."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.registry import CollectorRegistry

from federator.accounting import SqliteUsageStore, UsageMeter, attach
from federator.metrics import LABEL_LIMIT, OTHER, BoundedLabel, BoundedMetric, Metrics, StateSample
from federator.model import Job, JobPhase
from federator.scheduler import QueueConfig, Scheduler, SchedulerConfig
from federator.security.authz import Principal, stamp_owner
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, job, pool

H100 = "NVIDIA-H100-80GB-HBM3"


def _overflow(metrics: Metrics, label: str = "queue") -> float:
    return metrics.registry.get_sample_value("federator_metric_label_overflow_total", {"label": label}) or 0.0


def _queues(registry: CollectorRegistry) -> dict[str, set[str]]:
    """Every metric family's distinct queue label values."""
    seen: dict[str, set[str]] = {}
    for family in registry.collect():
        for sample in family.samples:
            if "queue" in sample.labels:
                seen.setdefault(family.name, set()).add(sample.labels["queue"])
    return seen


def test_the_first_values_keep_their_names_and_later_ones_become_other_counted() -> None:
    metrics = Metrics(label_limit=3)
    bound = metrics.queue_label
    assert [bound(q) for q in ("a", "b", "a", "c", "d", "e", "b")] == ["a", "b", "a", "c", OTHER, OTHER, "b"]
    assert _overflow(metrics) == 2.0
    assert bound("c") == "c" and bound("d") == OTHER  # kept stays kept; folded stays folded
    assert LABEL_LIMIT == 200


def test_a_limit_below_one_is_refused() -> None:
    counter = Counter("x_total", "x", ["label"], registry=CollectorRegistry())
    with pytest.raises(ValueError, match="at least one value"):
        BoundedLabel("queue", overflow=counter, limit=0)


def test_no_metric_has_an_unbounded_queue_label() -> None:
    """Every event metric with a queue label is reached through the shared queue bound."""
    metrics = Metrics()
    for name, attr in vars(metrics).items():
        if isinstance(attr, (Counter, Gauge, Histogram)):
            assert "queue" not in attr._labelnames, f"Metrics.{name} has a queue label outside queue_label"
        if isinstance(attr, BoundedMetric):
            assert attr.bound is metrics.queue_label
            assert attr.metric._labelnames[attr.position] == "queue"


def test_a_thousand_queues_make_limit_plus_one_series_in_every_queue_metric() -> None:
    metrics = Metrics(label_limit=5)
    queues = [f"org-{i:04d}" for i in range(1000)]
    metrics.watch_state(lambda: StateSample(
        clusters=[], jobs={(q, "Pending"): 1 for q in queues}, pending={(q, "QuotaExceeded"): 1 for q in queues},
        queue_accelerators={q: 2.0 for q in queues}, queue_weight={q: 1.0 for q in queues},
        queue_fair_share={q: 0.5 for q in queues}, queue_vendor_accelerators={(q, "nvidia"): 2.0 for q in queues}))
    for q in queues:
        metrics.jobs_submitted.labels(q).inc()
        metrics.jobs_finished.labels(q, "Succeeded").inc()
        metrics.submit_to_placement.labels(q).observe(1.0)
        metrics.preemptions.labels(q).inc()
        metrics.accelerator_seconds.labels(q, "c", "p", "m", "r", "v").inc(1.0)
    seen = _queues(metrics.registry)
    expected = {"federator_jobs_submitted", "federator_jobs_finished", "federator_job_submit_to_placement_seconds",
                "federator_preemptions", "federator_accelerator_seconds", "federator_jobs", "federator_pending_jobs",
                "federator_queue_accelerators", "federator_queue_weight", "federator_queue_fair_share"}
    assert set(seen) == expected
    for family, values in seen.items():
        assert values == {*queues[:5], OTHER}, family
    reg = metrics.registry
    # the folded queues are summed, not dropped
    assert reg.get_sample_value("federator_jobs", {"queue": OTHER, "phase": "Pending"}) == 995.0
    assert reg.get_sample_value("federator_queue_accelerators", {"queue": OTHER, "vendor": "nvidia"}) == 1990.0
    assert reg.get_sample_value("federator_queue_fair_share", {"queue": OTHER}) == 497.5
    assert reg.get_sample_value("federator_jobs_submitted_total", {"queue": OTHER}) == 995.0
    assert reg.get_sample_value("federator_jobs_submitted_total", {"queue": "org-0000"}) == 1.0
    assert _overflow(metrics) > 0


def test_the_federator_and_its_usage_meter_bound_the_queue_alike(tmp_path: Path) -> None:
    """Through the real call sites: Submit counts, the state gauges and the accelerator-seconds counter."""
    now = [1_000.0]
    metrics = Metrics(label_limit=2)
    fed = Federator(store=SqliteJobStore(tmp_path / "federator.db"), metrics=metrics, clock=lambda: now[0])
    attach(fed, UsageMeter(SqliteUsageStore(tmp_path / "federator.db"), metrics=metrics, clock=lambda: now[0]))
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool(H100, nodes=8)).capacity)
    jobs = [fed.submit(job(f"j{i}", gpus=8, models=(H100,), queue=f"team-{i}")) for i in range(4)]
    _run_ten_seconds(fed, jobs, now)
    seen = _queues(metrics.registry)
    assert {"federator_jobs_submitted", "federator_accelerator_seconds", "federator_jobs"} <= set(seen)
    for family, values in seen.items():
        assert values <= {"team-0", "team-1", OTHER}, family
    reg = metrics.registry
    assert reg.get_sample_value("federator_jobs_submitted_total", {"queue": OTHER}) == 2.0
    used = {s.labels["queue"]: s.value for f in reg.collect() if f.name == "federator_accelerator_seconds"
            for s in f.samples if s.name.endswith("_total")}
    assert used == {"team-0": 80.0, "team-1": 80.0, OTHER: 160.0}  # 8 accelerators x 10 s each


def _run_ten_seconds(fed: Federator, jobs: list[Job], now: list[float]) -> None:
    """Place the jobs, and run each from the clock's 1,000 s to 1,010 s: 10 s of every accelerator they hold."""
    fed.schedule_once()
    placements = [p for j in jobs for p in fed.jobs[j.job_id].placements]
    for p in placements:
        fed.job_update(fed.clusters[p.cluster], p.placement_id, JobPhase.RUNNING, "")
    now[0] = 1_010.0
    for p in placements:
        fed.job_update(fed.clusters[p.cluster], p.placement_id, JobPhase.SUCCEEDED, "")


def _accelerator_series(registry: CollectorRegistry) -> list[dict[str, str]]:
    return [s.labels for f in registry.collect() if f.name == "federator_accelerator_seconds"
            for s in f.samples if s.name.endswith("_total")]


def test_accelerator_seconds_has_no_user_or_namespace_and_a_bounded_number_of_series(tmp_path: Path) -> None:
    """Each label's own bound did not bound their product: 3,000 short jobs of one user over 250 queues x 250
    namespaces (which users choose) made 2,732 series. User and namespace are the usage API's now, and the
    counter keeps at most SERIES_LIMIT label sets, the rest counted with every label `other` (total exact)."""
    now = [1_000.0]
    metrics = Metrics()
    fed = Federator(store=SqliteJobStore(tmp_path / "federator.db"), metrics=metrics, clock=lambda: now[0])
    meter = UsageMeter(SqliteUsageStore(tmp_path / "federator.db"), metrics=metrics, clock=lambda: now[0],
                       series_limit=5)
    attach(fed, meter)
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool(H100, nodes=8)).capacity)
    jobs = [fed.submit(stamp_owner(replace(job(f"j{i}", gpus=1, models=(H100,), queue=f"q-{i}"),
                                           namespace=f"ns-{i}"), Principal(f"user-{i % 3}")))
            for i in range(12)]
    _run_ten_seconds(fed, jobs, now)
    series = _accelerator_series(metrics.registry)
    assert {frozenset(s) for s in series} == {frozenset({"queue", "cluster", "provider", "model", "region", "vendor"})}
    assert len(series) == 6  # the first 5 label sets, and the rest as one
    folded = {"queue": OTHER, "cluster": OTHER, "provider": OTHER, "model": OTHER, "region": OTHER, "vendor": OTHER}
    assert metrics.registry.get_sample_value("federator_accelerator_seconds_total", folded) == 70.0  # 7 x 1 x 10 s
    assert sum(metrics.registry.get_sample_value("federator_accelerator_seconds_total", s) or 0 for s in series) \
        == 120.0  # nothing lost
    assert _overflow(metrics, "accelerator_seconds_series") == 7


def test_the_oldest_pending_jobs_age_per_queue_is_exported_bounded_and_read_from_the_federator(tmp_path: Path) -> None:
    """FederatorJobsPendingTooLong alerted on pending jobs being there for 30m: with a standing national backlog,
    every queue at once. It reads each queue's oldest pending job's age now; a folded queue keeps the oldest."""
    now = [1_000.0]
    metrics = Metrics(label_limit=2)
    fed = Federator(store=SqliteJobStore(tmp_path / "federator.db"), metrics=metrics, clock=lambda: now[0])
    from federator.server.state_sample import state_sample
    metrics.watch_state(lambda: state_sample(fed))
    for i, (queue, at) in enumerate([("a", 1_000.0), ("a", 1_100.0), ("b", 1_200.0), ("c", 1_050.0),
                                     ("d", 1_300.0)]):
        now[0] = at
        fed.submit(job(f"j{i}", gpus=8, models=(H100,), queue=queue))  # no cluster: they all wait
    now[0] = 2_000.0
    age = {s.labels["queue"]: s.value for f in metrics.registry.collect()
           if f.name == "federator_oldest_pending_job_age_seconds" for s in f.samples}
    assert age == {"a": 1_000.0, "b": 800.0, OTHER: 950.0}  # c (950 s) and d (700 s) folded: the older


def test_defined_values_always_keep_their_names_and_invented_ones_share_what_is_left() -> None:
    """Red team F05: 200 queues one tenant invented took every slot, and the policy's queues showed as `other`.
    The defined ones (read live: a new policy, a Queue object) are named whenever they come; a kept invented
    value that a new policy defines frees its slot."""
    metrics = Metrics(label_limit=4)
    bound = metrics.queue_label
    policy: dict[str, object] = {"qa": object(), "qb": object()}
    bound.define(lambda: policy)
    assert [bound(q) for q in ("junk-0", "junk-1", "junk-2", "qa", "qb")] == ["junk-0", "junk-1", OTHER, "qa", "qb"]
    assert _overflow(metrics) == 1.0  # qa and qb were never counted as folded
    policy = {"qa": object(), "qb": object(), "qc": object(), "junk-0": object()}  # a reload: a new mapping
    assert [bound(q) for q in ("qc", "junk-0", "junk-1", "junk-3")] == ["qc", "junk-0", "junk-1", OTHER]
    policy = {name: object() for name in ("qa", "qb", "qc", "qd", "qe")}  # more defined than the bound: all named
    assert [bound(q) for q in ("qd", "qe", "junk-1", "junk-4")] == ["qd", "qe", "junk-1", OTHER]  # kept stays


def test_the_default_queue_is_never_folded_and_takes_a_slot_once_seen() -> None:
    metrics = Metrics(label_limit=2)
    bound = metrics.queue_label
    assert [bound(q) for q in ("x", "y", "z", "default", "w")] == ["x", "y", OTHER, "default", OTHER]


def test_the_federators_policy_queues_and_kubernetes_queue_objects_keep_their_names(tmp_path: Path) -> None:
    """Through the federator: its scheduler config's queues (the policy file; in Kubernetes mode the Queue
    objects, swapped in by set_scheduler_config) are the defined ones."""
    metrics = Metrics(label_limit=3)
    config = SchedulerConfig(queues={"qa": QueueConfig()})
    fed = Federator(store=SqliteJobStore(tmp_path / "federator.db"), metrics=metrics, scheduler=Scheduler(config))
    for i in range(5):
        fed.submit(job(f"junk-{i}", gpus=8, models=(H100,), queue=f"junk-{i}"))
    fed.submit(job("a", gpus=8, models=(H100,), queue="qa"))
    fed.set_scheduler_config(replace(config, queues={"qa": QueueConfig(), "made-later": QueueConfig()}))
    fed.submit(job("b", gpus=8, models=(H100,), queue="made-later"))
    pending = {s.labels["queue"]: s.value for f in metrics.registry.collect() if f.name == "federator_jobs"
               for s in f.samples}
    assert pending == {"junk-0": 1.0, "junk-1": 1.0, OTHER: 3.0, "qa": 1.0, "made-later": 1.0}
    submitted = {s.labels["queue"] for f in metrics.registry.collect() if f.name == "federator_jobs_submitted"
                 for s in f.samples}
    assert submitted == {"junk-0", "junk-1", OTHER, "qa", "made-later"}


def test_the_queue_label_budget_is_the_operators_to_raise(tmp_path: Path) -> None:
    """Outside SRE: a thousand organisations' queues, and only 200 named in the metrics, with no way to change it.
    `--metrics-queue-labels` sets the budget; below 1 is refused naming the flag."""
    import os
    import subprocess
    import sys

    m = Metrics(label_limit=1000)
    for i in range(1000):
        m.jobs_submitted.labels(f"org-{i}").inc()
    assert m.registry.get_sample_value("federator_jobs_submitted_total", {"queue": "org-999"}) == 1.0
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    got = subprocess.run([sys.executable, "-m", "federator", "serve", "--insecure", "--db", str(tmp_path / "f.db"),
                          "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--metrics-queue-labels", "0"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert got.returncode == 2
    assert got.stderr.strip() == "federator serve: --metrics-queue-labels: must be at least 1, got 0"
