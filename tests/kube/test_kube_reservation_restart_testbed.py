"""`federator serve --kubeconfig` restarted while a gang holds a reservation: the new process holds it on from the
clocks the gangs' FederatedJob status kept, not from its own start (backends/kube/reservation_clocks.py).

Real processes on the test bed, as a user runs them: one member (member-a, 2 x 8 H100) and its agent; a job of
another queue runs on one node for good, and a 2 x 8 H100 gang waits past reservations.afterSeconds and holds room
on member-a. The federator is stopped and started again on the same objects; the new process chooses the same
reservation, and its clocks are the first process's: the gang holds since it first held, and maxHoldSeconds counts
from then. Before, Kubernetes mode kept them in memory only (each restart gave the gang a new maxHoldSeconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kube_support import Kube
from one_member import gang_job, one_member
from support import eventually, scraped

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

POLICY = "reservations: {afterSeconds: 1, maxReservations: 1, maxHoldSeconds: 3600}\n"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    policy = tmp_path_factory.mktemp("reservation-restart-policy") / "policy.yaml"
    policy.write_text(POLICY)
    yield from one_member(tmp_path_factory, "reservation-restart", "--policy", str(policy))


def _kept(kube: Kube) -> Any:
    return ((kube.fj("gang") or {}).get("status") or {}).get("reservation")


def _holding(kube: Kube) -> bool:
    """The running federator's cycles hold one reservation (its own gauge: the first process's status says so too)."""
    return scraped(kube.fed.metrics_url, "federator_reservations") == 1


def test_a_restarted_federator_holds_the_gangs_reservation_on_from_its_first_hold(kube: Kube) -> None:
    kube.kubectl("host", "apply", "-f", "-", input=gang_job("filler", queue="other", replicas=1))
    eventually(lambda: kube.phase("filler") == "Running", timeout=120, what=lambda: f"filler Running\n{kube.logs()}")
    kube.kubectl("host", "apply", "-f", "-", input=gang_job("gang", queue="train", replicas=2))
    first = eventually(lambda: (k := _kept(kube)) and k.get("cluster") == "member-a" and k, timeout=60,
                       what=lambda: f"the gang's reservation kept in its status ({_kept(kube)!r})\n{kube.logs()}")
    assert first["since"] == first["began"] and "restsUntil" not in first

    kube.fed.server.stop()  # type: ignore[union-attr]
    kube.fed.start_server(timeout=60)
    eventually(lambda: _holding(kube), timeout=60, what=lambda: f"the new process holding room\n{kube.logs()}")
    eventually(lambda: (scraped(kube.fed.metrics_url, "federator_scheduling_cycle_duration_seconds_count") or 0) >= 10,
               timeout=60, what="ten cycles of the new process (its controller's loop writes what changed meanwhile)")
    assert _holding(kube)
    assert _kept(kube) == first  # held since the first process's first hold: its maxHoldSeconds runs on
    # and the gang's reason, which the new process writes, says so
    since = first["since"].split(".")[0] + "Z"  # its reason says times to the second
    reason = ((kube.fj("gang") or {}).get("status") or {}).get("pendingReason") or {}
    assert f"to free on member-a, held for it since {since}" in reason.get("message", ""), reason
