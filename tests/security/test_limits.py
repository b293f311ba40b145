"""Input limits: the token bucket, Hello checks, per-job limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federator.security.limits import Limits, TokenBucket, check_hello


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] += 100  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3


def test_a_token_bucket_on_a_wall_clock_stepped_back_is_not_drained() -> None:
    """The JobUpdate budget runs on the federator's clock, a wall clock: stepped back an hour (NTP), the bucket
    went an hour's worth of tokens into debt, and every update was dropped for that hour."""
    now = [1000.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert bucket.take()
    now[0] -= 3600
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert bucket.take()


@pytest.mark.parametrize(("cluster", "region", "labels", "field"), [
    ("", "east", {}, "hello.cluster"),
    ("East", "east", {}, "hello.cluster"),
    ("east-1", "", {}, "hello.region"),
    ("east-1", "east", {f"k{i}": "v" for i in range(65)}, "hello.labels"),
    ("east-1", "east", {"bad key!": "v"}, "hello.labels"),
    ("east-1", "east", {"k": "v" * 300}, "hello.labels[k]"),
], ids=["empty-cluster", "upper-cluster", "empty-region", "too-many-labels", "bad-label-key", "long-label"])
def test_a_bad_hello_is_refused_naming_the_field(cluster: str, region: str, labels: dict[str, str],
                                                 field: str) -> None:
    problem = check_hello(cluster, region, labels, limits=Limits())
    assert problem is not None and problem.startswith(field)


@pytest.mark.parametrize("key", ["topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region",
                                 "federator.io/region"])
def test_a_region_label_must_name_the_hellos_region(key: str) -> None:
    """The scheduler places by hello.region (which a trust file binds); a label naming another region would tell
    whoever reads the cluster's labels a region it is not placed by."""
    assert check_hello("east-1", "east", {key: "west"}, limits=Limits()) == (
        f"hello.labels[{key}]: 'west' is not the cluster's region 'east' (hello.region); a region label must name "
        "the region the agent gives, or be left out")
    assert check_hello("east-1", "east", {key: "east"}, limits=Limits()) is None


def test_a_good_hello_passes() -> None:
    assert check_hello("east-1", "east", {"federator.io/price-per-accelerator-hour": "4.1", "provider": "x"},
                       limits=Limits()) is None


@given(st.text(max_size=300), st.text(max_size=80), st.dictionaries(st.text(max_size=300), st.text(max_size=300),
                                                                     max_size=70))
def test_check_hello_never_raises_and_names_a_hello_field(cluster: str, region: str, labels: dict[str, str]) -> None:
    problem = check_hello(cluster, region, labels, limits=Limits())
    assert problem is None or problem.startswith("hello.")


@pytest.mark.parametrize("kw", [{"max_message_bytes": 0}, {"reports_per_second": 0.0}, {"max_replicas_per_job": -1}],
                         ids=["message-bytes", "report-rate", "replicas"])
def test_limits_refuse_nonsense_naming_the_setting(kw: dict[str, float]) -> None:
    (name,) = kw
    with pytest.raises(ValueError, match=f"limits.{name}"):
        Limits(**kw)  # type: ignore[arg-type]
