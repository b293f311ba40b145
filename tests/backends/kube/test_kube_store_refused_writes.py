"""Status writes the API server refuses for what they are (403, 422), for jobs whose FederatedJob exists.

Found reading the store: such a write was retried on every flush (the controller flushes every report
interval, about once a second) for ever, with a warning each time, for every job: an operator whose RBAC
lacked federatedjobs/status got a log line per job per second and nothing an alert could read. Now each
job's retry backs off (1 s doubling to 60 s), the log says it once per job and reason, every write not
taken is counted by reason, and the jobs held are a gauge (backends/kube/retries.py).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import pytest

from federator.backends.kube.api import ForbiddenError, InvalidError, KubeError
from federator.backends.kube.retries import RetryBook, failure_of
from federator.backends.kube.store import KubeJobStore
from federator.jobfile_loading import parse_job_documents
from federator.metrics import Metrics
from federator.model import Job, JobId, JobPhase
from federator.store.errors import StoreRefused, WriteFailure

from kube_fakes import FlakyApi

JOB = """
apiVersion: federator.io/v1alpha1
kind: FederatedJob
metadata: {name: pretrain, namespace: research}
spec: {kind: training, replicas: 1, resources: {cpu: "1"}}
"""

FORBIDDEN = ForbiddenError(403, 'federatedjobs.federator.io "pretrain" is forbidden: cannot patch resource '
                           '"federatedjobs/status"', reason="Forbidden")
INVALID = InvalidError(422, 'FederatedJob.federator.io "pretrain" is invalid: status.phase: Unsupported value: '
                       '"Preempted"', reason="Invalid")


def job(name: str = "pretrain", phase: JobPhase = JobPhase.PENDING) -> Job:
    return Job(JobId(f"{name}-1"), parse_job_documents(JOB.replace("pretrain", name))[0], submitted_at=1.0,
               phase=phase)


class CountingApi(FlakyApi):
    """FlakyApi that counts status write attempts (taken or not) and can refuse status writes only."""

    def __init__(self) -> None:
        super().__init__()
        self.tries = 0
        self.refuse: KubeError | None = None  # the answer to every status write

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        if subresource == "status":
            self.tries += 1
            if self.refuse is not None:
                raise self.refuse
        return super().patch(res, name, body, namespace, subresource=subresource)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def refused_store(error: KubeError, *names: str) -> tuple[CountingApi, KubeJobStore, Clock, Counter[WriteFailure]]:
    """A store whose jobs' FederatedJobs exist, and whose next status writes the API server refuses with `error`."""
    api, clock, counted = CountingApi(), Clock(), Counter[WriteFailure]()
    store = KubeJobStore(api, timer=clock)  # type: ignore[arg-type]
    store.on_write_error = lambda reason: counted.update([reason])
    store.put([job(n) for n in names or ("pretrain",)])
    api.refuse = error
    return api, store, clock, counted


@pytest.mark.parametrize(("error", "reason"), [(FORBIDDEN, WriteFailure.FORBIDDEN), (INVALID, WriteFailure.INVALID)],
                         ids=["403", "422"])
def test_a_refused_status_write_backs_off_doubling_to_a_cap(error: KubeError, reason: WriteFailure) -> None:
    api, store, clock, counted = refused_store(error)
    api.tries = 0
    store.put([job(phase=JobPhase.RUNNING)])  # held, not raised: the job exists, only its status is refused
    assert api.tries == 1 and store.unwritten() == {reason.value: 1}
    tried_at = []
    for _ in range(400):  # flushes a second apart for 400 s: the controller's loop
        clock.now += 1.0
        before = api.tries
        assert store.flush() == 1
        if api.tries > before:
            tried_at.append(clock.now - 100.0)
    gaps = [b - a for a, b in zip([0.0, *tried_at], tried_at, strict=False)]
    assert gaps[:7] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]  # doubling from 1 s, at most 60 s
    assert set(gaps[6:]) == {60.0}
    assert api.tries == 1 + len(tried_at) < 20  # not 400
    assert counted == {reason: api.tries}


def test_it_is_said_once_per_job_and_again_when_the_reason_changes_or_after_a_while(
        caplog: pytest.LogCaptureFixture) -> None:
    api, store, clock, _ = refused_store(FORBIDDEN, "pretrain", "second")
    with caplog.at_level(logging.WARNING, logger="federator.kube.store"):
        store.put([job(), job("second")])
        for _ in range(120):
            clock.now += 1.0
            store.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # one per job, not one per try
    assert all("federatedjobs/status" in line and "rbac.yaml" in line for line in lines)
    caplog.clear()
    api.refuse = INVALID  # an old CRD, after the RBAC was mended: a new reason is said
    with caplog.at_level(logging.WARNING, logger="federator.kube.store"):
        clock.now += 60.0
        store.flush()
        clock.now += 60.0
        store.flush()
    assert [r.getMessage() for r in caplog.records if "is invalid" in r.getMessage()] != []
    assert len(caplog.records) == 2 and all("crds/" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="federator.kube.store"):
        for _ in range(11):  # ten minutes on, still failing: said again
            clock.now += 60.0
            store.flush()
    assert len(caplog.records) == 2


def test_a_retry_that_works_clears_the_job_and_says_so() -> None:
    api, store, clock, _ = refused_store(FORBIDDEN)
    store.put([job(phase=JobPhase.RUNNING)])
    api.refuse = None  # the operator applied the RBAC
    assert store.flush() == 1  # not due yet
    clock.now += 1.0
    assert store.flush() == 0 and store.unwritten() == {}
    assert api.objects[("research", "pretrain")]["status"]["phase"] == "Running"
    api.tries = 0
    for _ in range(5):
        clock.now += 60.0
        store.flush()
    assert api.tries == 0  # nothing held: a flush writes nothing
    api.refuse = FORBIDDEN
    store.put([job(phase=JobPhase.SUCCEEDED)])
    clock.now += 1.0  # failing anew: the back-off starts again at a second
    api.tries = 0
    store.flush()
    assert api.tries == 1


def test_a_newer_state_of_a_held_job_is_written_at_once_not_when_its_retry_is_due() -> None:
    """A 422 says this status does not validate; the job's next one may."""
    api, store, clock, _ = refused_store(INVALID)
    store.put([job(phase=JobPhase.RUNNING)])
    for _ in range(6):  # backed off to 32 s
        clock.now += 60.0
        store.flush()
    api.refuse = None
    api.tries = 0
    store.put([job(phase=JobPhase.SUCCEEDED)])
    assert api.tries == 1 and store.flush() == 0
    assert api.objects[("research", "pretrain")]["status"]["phase"] == "Succeeded"


def test_close_tries_every_held_write_once_without_waiting_for_its_back_off() -> None:
    api, store, clock, _ = refused_store(FORBIDDEN, "pretrain", "second")
    store.put([job(phase=JobPhase.RUNNING), job("second", phase=JobPhase.RUNNING)])
    for _ in range(5):
        clock.now += 60.0
        store.flush()
    api.refuse = None  # mended just before shutdown, while both wait for their next try
    api.tries = 0
    done = threading.Event()
    worker = threading.Thread(target=lambda: (store.close(), done.set()), daemon=True)
    worker.start()
    worker.join(timeout=30)  # a guard against a hang, not a timing: close never sleeps
    assert done.is_set() and api.tries == 2 and store.unwritten() == {}


def test_close_with_writes_still_refused_returns_and_says_how_many(caplog: pytest.LogCaptureFixture) -> None:
    api, store, _, _ = refused_store(FORBIDDEN)
    store.put([job(phase=JobPhase.RUNNING)])
    api.tries = 0
    with caplog.at_level(logging.WARNING, logger="federator.kube.store"):
        store.close()
    assert api.tries == 1
    assert "closing with 1 jobs' newest state not written (1 forbidden)" in caplog.text


def test_a_create_refused_with_403_or_422_is_still_store_refused_and_not_held() -> None:
    api, clock = FlakyApi(), Clock()
    store = KubeJobStore(api, timer=clock)  # type: ignore[arg-type]
    for error in (FORBIDDEN, INVALID):
        api.away = error
        with pytest.raises(StoreRefused, match="would not create the FederatedJob research/pretrain"):
            store.put([job()])
        assert store.flush() == 0 and store.unwritten() == {}


def test_the_metrics_show_the_held_jobs_and_the_writes_not_taken() -> None:
    """As server/app.py wires them in Kubernetes mode."""
    metrics = Metrics()
    api, store, clock, _ = refused_store(FORBIDDEN)
    metrics.watch_store(lambda: 0, lambda: 0, unwritten=store.unwritten)
    store.on_write_error = lambda reason: metrics.store_write_errors.labels(reason.value).inc()
    store.put([job(phase=JobPhase.RUNNING)])
    clock.now += 1.0
    store.flush()
    sample = metrics.registry.get_sample_value
    assert sample("federator_store_unwritten_jobs", {"reason": "forbidden"}) == 1
    assert sample("federator_store_unwritten_jobs", {"reason": "invalid"}) == 0
    assert sample("federator_store_write_errors_total", {"reason": "forbidden"}) == 2
    assert sample("federator_store_write_errors_total", {"reason": "conflict"}) == 0
    api.refuse = None
    clock.now += 2.0
    store.flush()
    assert sample("federator_store_unwritten_jobs", {"reason": "forbidden"}) == 0


@pytest.mark.parametrize(("status", "reason"), [
    (0, WriteFailure.UNAVAILABLE), (429, WriteFailure.UNAVAILABLE), (503, WriteFailure.UNAVAILABLE),
    (401, WriteFailure.FORBIDDEN), (403, WriteFailure.FORBIDDEN), (400, WriteFailure.INVALID),
    (422, WriteFailure.INVALID), (409, WriteFailure.CONFLICT), (404, WriteFailure.OTHER),
], ids=lambda v: str(v))
def test_each_answer_has_one_bounded_reason(status: int, reason: WriteFailure) -> None:
    assert failure_of(KubeError(status, "x")) is reason


def test_a_retry_book_refuses_delays_that_cannot_back_off() -> None:
    with pytest.raises(ValueError, match="need 0 < first <= cap, got first=5, cap=1"):
        RetryBook(first=5, cap=1)
