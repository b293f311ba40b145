"""The leader election decision: when a candidate may write the Lease, on its own clock."""

from __future__ import annotations

from typing import Any

import pytest

from federator.backends.kube.leader import LeaseConfig, Observed, decide

CFG = LeaseConfig(namespace="ns", name="federator", identity="a", lease_duration=15, renew_deadline=10,
                  retry_period=2)


def lease(holder: str | None, renew: str = "2026-01-01T00:00:00.000000Z", transitions: int = 0) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": "42"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renew,
                     "acquireTime": "2026-01-01T00:00:00.000000Z", "leaseTransitions": transitions}}


def test_a_missing_lease_is_created() -> None:
    desired = decide(None, cfg=CFG, observed=Observed(), now_mono=0.0, now_wall=1e9)
    assert desired is not None
    assert desired["spec"]["holderIdentity"] == "a"
    assert "resourceVersion" not in desired["metadata"]


def test_another_live_holder_is_respected_until_its_record_is_stale_on_our_clock() -> None:
    seen = Observed()
    assert decide(lease("b"), cfg=CFG, observed=seen, now_mono=100.0, now_wall=0) is None
    assert decide(lease("b"), cfg=CFG, observed=seen, now_mono=114.0, now_wall=0) is None
    # b renews: the record changes, so the clock starts again
    assert decide(lease("b", renew="later"), cfg=CFG, observed=seen, now_mono=114.5, now_wall=0) is None
    assert decide(lease("b", renew="later"), cfg=CFG, observed=seen, now_mono=129.0, now_wall=0) is None
    taken = decide(lease("b", renew="later"), cfg=CFG, observed=seen, now_mono=130.0, now_wall=0)
    assert taken is not None
    assert taken["spec"]["holderIdentity"] == "a"
    assert taken["spec"]["leaseTransitions"] == 1
    assert taken["metadata"]["resourceVersion"] == "42"  # a racing candidate's write fails on it


@pytest.mark.parametrize("holder", ["", None], ids=["empty", "released"])
def test_a_released_lease_is_free_at_once(holder: str | None) -> None:
    desired = decide(lease(holder), cfg=CFG, observed=Observed(), now_mono=0.0, now_wall=0)
    assert desired is not None and desired["spec"]["holderIdentity"] == "a"


def test_the_holder_renews_and_keeps_its_acquire_time() -> None:
    desired = decide(lease("a", transitions=2), cfg=CFG, observed=Observed(), now_mono=0.0, now_wall=1e9)
    assert desired is not None
    assert desired["spec"]["acquireTime"] == "2026-01-01T00:00:00.000000Z"
    assert desired["spec"]["renewTime"] != "2026-01-01T00:00:00.000000Z"
    assert desired["spec"]["leaseTransitions"] == 2


def test_timings_must_nest() -> None:
    with pytest.raises(ValueError, match="renew deadline"):
        LeaseConfig(namespace="ns", name="l", identity="a", lease_duration=5, renew_deadline=10, retry_period=2)
