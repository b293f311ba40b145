"""When each job last moved, in Kubernetes mode (backends/kube/move_times.py): the status field, read back from the
job store's listing, and the buffered writer the controller flushes. The real API server's side (the CRD keeps the
field, a SIGKILLed federator's successor keeps the quiet time) is tests/kube/test_kube_rebalance_restart_testbed.py."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from test_kube_reservation_clock_writes import Api

from federator.backends.kube.api import KubeError, NotFoundError
from federator.backends.kube.move_times import FIELD, KubeMoveStore, decode
from federator.backends.kube.store import KubeJobStore, Owner
from federator.model import JobId

T0 = 1_800_000_000.0
CHAT, OTHER = JobId("chat-1"), JobId("chat-2")


class PruningApi(Api):
    """An API server whose FederatedJob CRD is from before status.rebalance: it drops the field."""

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        out = super().patch(res, name, body, namespace, subresource=subresource)
        out["status"].pop(FIELD, None)
        return out


def moves(api: Api) -> KubeMoveStore:
    store = KubeJobStore(api, namespace="ns")  # type: ignore[arg-type]
    store._own(CHAT, Owner("ns", "chat", "uid-1"))
    return KubeMoveStore(store)


@pytest.mark.parametrize(("value", "said"), [
    ("2027-01-15T08:00:00Z", "status.rebalance: must be an object, got str"),
    ({}, "status.rebalance.lastMovedAt: missing"),
    ({"lastMovedAt": "yesterday"}, "status.rebalance.lastMovedAt: must be an RFC 3339 time, got 'yesterday'"),
])
def test_a_field_that_is_not_a_move_time_is_refused_naming_it(value: object, said: str) -> None:
    with pytest.raises(ValueError) as err:
        decode(value)
    assert str(err.value) == said


def test_load_takes_the_times_of_the_job_stores_listing_and_skips_one_it_cannot_read(
        caplog: pytest.LogCaptureFixture) -> None:
    store = moves(Api())
    store.jobs.moves = {CHAT: {"lastMovedAt": "2027-01-15T08:00:00.500000Z"}, OTHER: {"lastMovedAt": "soon"}}
    with caplog.at_level(logging.WARNING):
        assert store.load() == {CHAT: T0 + 0.5}
    assert "job chat-2: status.rebalance.lastMovedAt: must be an RFC 3339 time, got 'soon'; it may move again at " \
           "once" in caplog.text
    assert store.jobs.moves == {}  # read once, not held for the process's life


def test_put_writes_nothing_until_flushed_and_then_each_jobs_newest_time_once() -> None:
    api = Api()
    store = moves(api)
    store.put({CHAT: T0})  # a move started
    store.put({CHAT: T0 + 30.25})  # and ended before the flush: the newest alone is written
    assert api.patches == [] and store.due == 1
    assert store.flush() == 0
    assert api.status["chat"][FIELD] == {"lastMovedAt": "2027-01-15T08:00:30.250000Z"}
    assert api.patches[0][1]["metadata"] == {"uid": "uid-1"}  # never lands on a newer object of that name
    assert decode(api.status["chat"][FIELD]) == T0 + 30.25  # what the next leader reads back
    assert store.flush() == 0 and len(api.patches) == 1  # nothing due: no write
    store.put({}, forget=[CHAT])  # past its quiet time: the field goes
    store.flush()
    assert FIELD not in api.status["chat"]


def test_a_write_the_api_server_does_not_take_stays_due_and_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    api = Api()
    store = moves(api)
    api.fail = KubeError(503, "unavailable")
    store.put({CHAT: T0})
    with caplog.at_level(logging.WARNING):
        assert store.flush() == 1
        assert store.flush() == 1
    assert caplog.text.count("cannot keep when job chat-1 last moved") == 1
    api.fail = None
    assert store.flush() == 0 and api.status["chat"][FIELD] == {"lastMovedAt": "2027-01-15T08:00:00.000000Z"}


def test_a_job_whose_federatedjob_is_gone_or_not_made_yet() -> None:
    api = Api()
    store = moves(api)
    store.put({OTHER: T0})  # no FederatedJob known yet: kept for when it is
    assert store.flush() == 1
    store.put({}, forget=[OTHER])  # forgotten before it had one: nothing to write
    assert store.flush() == 0
    api.fail = NotFoundError(404, "gone")
    store.put({CHAT: T0})
    assert store.flush() == 0  # deleted: nothing left to keep the time on
    assert api.patches == []


def test_an_old_crd_that_prunes_the_field_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    api = PruningApi()
    store = moves(api)
    with caplog.at_level(logging.WARNING):
        for t in (T0, T0 + 1):
            store.put({CHAT: t})
            store.flush()
    assert caplog.text.count("the FederatedJob CRD does not keep status.rebalance") == 1
    assert "Apply deploy/helm/federator/crds/" in caplog.text
