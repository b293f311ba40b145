"""The reservations' clocks in Kubernetes mode (backends/kube/reservation_clocks.py): the status field, read back from
the job store's listing, and the buffered writer the controller flushes. The real API server's side (the CRD keeps
the field, a restart goes on from them) is tests/kube/test_kube_reservation_clocks_testbed.py."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from federator.backends.kube.api import KubeError, NotFoundError
from federator.backends.kube.reservation_clocks import KubeReservationClockStore, decode, encode
from federator.backends.kube.store import KubeJobStore, Owner
from federator.model import JobId
from federator.store.reservation_clocks import ReservationClock

T0 = 1_800_000_000.0
GANG, OTHER = JobId("gang-1"), JobId("gang-2")


class Api:
    """Status patches as the API server answers them: kept (`prune`: dropped, as an old CRD does), or an error."""

    def __init__(self) -> None:
        self.status: dict[str, dict[str, Any]] = {}
        self.fail: KubeError | None = None
        self.prune = False
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        assert subresource == "status"
        if self.fail is not None:
            raise self.fail
        self.patches.append((name, body))
        status = self.status.setdefault(name, {})
        for key, value in body["status"].items():  # a merge patch, one level deep as these are
            if value is None:
                status.pop(key, None)
                continue
            merged = {**status.get(key, {}), **value}
            status[key] = {k: v for k, v in merged.items() if v is not None}
        shown = {k: v for k, v in status.items() if not (self.prune and k == "reservation")}
        return {"metadata": {"name": name}, "status": shown}


def clock_store(api: Api) -> KubeReservationClockStore:
    store = KubeJobStore(api, namespace="ns")  # type: ignore[arg-type]
    store._own(GANG, Owner("ns", "gang", "uid-1"))
    return KubeReservationClockStore(store)


def test_a_clock_round_trips_through_the_status_field() -> None:
    for clock in (ReservationClock(GANG, "east", T0 + 10.5, T0), ReservationClock(GANG, rests_until=T0 + 2000)):
        assert decode(GANG, {k: v for k, v in encode(clock).items() if v is not None}) == clock


@pytest.mark.parametrize(("value", "said"), [
    ("east", "status.reservation: must be an object, got str"),
    ({"cluster": "east"}, "status.reservation.since: must be set with cluster 'east'"),
    ({"cluster": "east", "since": "yesterday"}, "status.reservation.since: must be an RFC 3339 time, got 'yesterday'"),
    ({}, "status.reservation: holds neither a cluster nor restsUntil"),
])
def test_a_field_that_is_not_a_clock_is_refused_naming_it(value: object, said: str) -> None:
    with pytest.raises(ValueError) as err:
        decode(GANG, value)
    assert str(err.value) == said


def test_load_takes_the_clocks_of_the_job_stores_listing_and_skips_one_it_cannot_read(
        caplog: pytest.LogCaptureFixture) -> None:
    store = clock_store(Api())
    store.jobs.reservations = {GANG: encode(ReservationClock(GANG, "east", T0, T0)), OTHER: {"cluster": "west"}}
    with caplog.at_level(logging.WARNING):
        assert store.load() == [ReservationClock(GANG, "east", T0, T0)]
    assert "job gang-2: status.reservation.since: must be set with cluster 'west'; its reservation's clocks start " \
           "afresh" in caplog.text
    assert store.jobs.reservations == {}  # read once, not held for the process's life


def test_put_writes_nothing_until_flushed_and_then_each_gangs_newest_change_once() -> None:
    api = Api()
    store = clock_store(api)
    store.put([ReservationClock(GANG, "east", T0, T0)])
    store.put([ReservationClock(GANG, "west", T0 + 5, T0)])  # moved before the flush: the newest alone is written
    assert api.patches == [] and store.due == 1
    assert store.flush() == 0
    assert api.status["gang"]["reservation"] == {"cluster": "west", "since": "2027-01-15T08:00:05.000000Z",
                                                 "began": "2027-01-15T08:00:00.000000Z"}
    assert store.flush() == 0 and len(api.patches) == 1  # nothing due: no write
    store.put([ReservationClock(GANG, rests_until=T0 + 1000)])
    store.flush()  # the reservation's fields go: a resting gang has no cluster
    assert api.status["gang"]["reservation"] == {"restsUntil": "2027-01-15T08:16:40.000000Z"}
    store.put([], forget=[GANG])
    store.flush()
    assert "reservation" not in api.status["gang"]


def test_a_write_the_api_server_does_not_take_stays_due_and_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    api = Api()
    store = clock_store(api)
    api.fail = KubeError(503, "unavailable")
    store.put([ReservationClock(GANG, "east", T0, T0)])
    with caplog.at_level(logging.WARNING):
        assert store.flush() == 1
        assert store.flush() == 1
    assert caplog.text.count("cannot keep the clocks of job gang-1's reservation") == 1
    api.fail = None
    assert store.flush() == 0 and api.status["gang"]["reservation"]["cluster"] == "east"


def test_a_gang_whose_federatedjob_is_gone_or_not_made_yet() -> None:
    api = Api()
    store = clock_store(api)
    store.put([ReservationClock(OTHER, "east", T0, T0)])  # no FederatedJob known yet: kept for when it is
    assert store.flush() == 1
    store.put([], forget=[OTHER])  # forgotten before it had one: nothing to write
    assert store.flush() == 0
    api.fail = NotFoundError(404, "gone")
    store.put([ReservationClock(GANG, "east", T0, T0)])
    assert store.flush() == 0  # deleted: nothing left to keep the clock on
    assert api.patches == []


def test_an_old_crd_that_prunes_the_field_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    api = Api()
    api.prune = True
    store = clock_store(api)
    with caplog.at_level(logging.WARNING):
        for t in (T0, T0 + 1):
            store.put([ReservationClock(GANG, "east", t, T0)])
            store.flush()
    assert caplog.text.count("the FederatedJob CRD does not keep status.reservation") == 1
    assert "Apply deploy/helm/federator/crds/" in caplog.text
