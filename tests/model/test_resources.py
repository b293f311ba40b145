import pytest

from federator.model import QuantityError, Resources, format_accelerators, format_bytes, to_bytes, to_milli


@pytest.mark.parametrize(("raw", "milli"), [(8, 8000), ("4", 4000), ("500m", 500), (0.5, 500), ("1.5", 1500)],
                         ids=["int", "string", "milli", "float", "decimal"])
def test_to_milli(raw: object, milli: int) -> None:
    assert to_milli(raw) == milli


@pytest.mark.parametrize(("raw", "n"), [("16Gi", 16 * 2**30), ("1Ti", 2**40), ("128M", 128_000_000), (1024, 1024)])
def test_to_bytes(raw: object, n: int) -> None:
    assert to_bytes(raw) == n


@pytest.mark.parametrize(("raw", "milli", "n"), [
    ("1e3", 1_000_000, 1000), ("2E-3", 2, None), ("5u", None, None), ("2000000n", 2, None), ("3E", None, 3 * 10**18),
    ("1Ei", None, 2**60), (".5k", 500_000, 500),
], ids=["exponent", "negative-exponent", "micro", "nano", "exa", "exbi", "leading-point"])
def test_every_form_of_a_kubernetes_quantity_is_read(raw: str, milli: int | None, n: int | None) -> None:
    """The API server sends quantities as they were written or in canonical form ("100u" for 0.0001)."""
    if milli is None:
        with pytest.raises(QuantityError):  # finer than a thousandth, or more milli-units than an int64 holds
            to_milli(raw)
    else:
        assert to_milli(raw) == milli
    if n is None:
        with pytest.raises(QuantityError):
            to_bytes(raw)
    else:
        assert to_bytes(raw) == n


@pytest.mark.parametrize("raw", ["-1", "ten", "4 GB", True, None, [1], "0.0001", -3, float("nan"), "1e", "1e1000",
                                 "9223372036854775808"],
                         ids=["negative", "word", "space-unit", "bool", "none", "list", "too-fine", "neg-int", "nan",
                              "bare-e", "long-exponent", "past-int64"])
def test_bad_quantities_are_refused(raw: object) -> None:
    with pytest.raises(QuantityError):
        to_milli(raw)


def test_whole_and_fractional_gpus() -> None:
    assert Resources(accelerator_milli=8000).whole_accelerators == 8
    assert Resources(accelerator_milli=500).whole_accelerators == 0
    assert Resources(accelerator_milli=500).is_fractional_accelerator
    assert (Resources(1000, 10, 2000) * 3) == Resources(3000, 30, 6000)
    assert format_accelerators(2500) == "2.5" and format_accelerators(8000) == "8"
    assert format_bytes(64 * 2**30) == "64Gi"


def test_a_fraction_leaves_the_rest_of_its_shared_bucket_no_roomier_than_its_node() -> None:
    """Two shared GPUs with 500m free, the roomier node's host 8 CPUs. After a 250m fraction that takes
    6 of them, which node the other GPU is on is not known: the cycle counts it with what the bound
    node has left (2 CPUs), so a second CPU-hungry fraction is not sent where it may not fit; a
    fraction that needs little CPU still fits there."""
    from federator.model import AcceleratorPool

    gib = 2**30
    pool = AcceleratorPool("L4", (2, 0), 2, 2, shared_devices=((500, 2),), host_room=((16_000, 64 * gib), (0, 0)),
                           shared_room=((500, 8_000, 64 * gib),))
    assert pool.replica_capacity(250, 6_000, gib) == 4  # as far as is known, both GPUs' nodes host fractions
    after = pool.take_milli(250, 1, cpu_milli=6_000, memory_bytes=gib)
    assert after.shared_devices == ((250, 1), (500, 1))
    assert after.replica_capacity(250, 6_000, gib) == 0  # the optimistic room said 2 (the other 500m GPU)
    assert after.replica_capacity(250, 1_000, gib) == 3  # 2 on the 500m GPU, 1 on the 250m one


def test_a_fraction_named_to_a_bucket_takes_from_that_bucket_only() -> None:
    """`after_take(..., bucket=...)`: where a node policy such as FGD would bind one fraction, in place of
    best fit (which takes the fullest shared GPU that holds it)."""
    from federator.model import AcceleratorPool
    from federator.model.pool_room import shared_bucket, whole_bucket

    pool = AcceleratorPool("L4", (0, 1, 0, 1), 4, 4, shared_devices=((600, 1), (900, 1)))
    assert pool.after_take(500, 1)[:2] == ((0, 1, 0, 1), ((100, 1), (900, 1)))  # best fit: the 600
    assert pool.after_take(500, 1, bucket=shared_bucket(900))[:2] == ((0, 1, 0, 1), ((400, 1), (600, 1)))
    assert pool.after_take(500, 1, bucket=whole_bucket(1))[:2] == ((1, 0, 0, 1), ((500, 1), (600, 1), (900, 1)))
    assert pool.after_take(500, 1, bucket=whole_bucket(3))[:2] == ((0, 1, 1, 0), ((500, 1), (600, 1), (900, 1)))
    for bad in (shared_bucket(300), whole_bucket(2)):  # no such device: refused, not best fit instead
        with pytest.raises(ValueError, match="do not fit"):
            pool.after_take(500, 1, bucket=bad)
    with pytest.raises(ValueError, match="one replica"):
        pool.after_take(500, 2, bucket=whole_bucket(1))
    with pytest.raises(ValueError, match="fractional"):
        pool.after_take(1000, 1, bucket=whole_bucket(1))


def test_one_node_room_is_a_real_nodes_the_nearest_to_both_maxima() -> None:
    from federator.model.pool_room import one_node_room
    gib = 2**30
    cpu_rich, mem_rich, balanced = (64_000, 32 * gib), (8_000, 1024 * gib), (48_000, 512 * gib)
    assert one_node_room([cpu_rich, mem_rich]) in {cpu_rich, mem_rich}
    assert one_node_room([cpu_rich, mem_rich, balanced]) == balanced
    assert one_node_room([(0, 0), (0, 0)]) == (0, 0)
    assert one_node_room([]) == (0, 0)
