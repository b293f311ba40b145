"""A member with one node whose vendor labels it with another vendor's model name (outside QA new60, N4).

The federator takes one pool per model name in a report and refuses a report naming one twice; the agent reported
both vendors' pools, so one mislabelled node made every report of its member refused and froze the member's capacity.
The agent now reports one of them (the most devices, then the vendor first by name) and says the other left out.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from typing import Any

import pytest

from federator.api import convert
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED
from federator.backends.kube.model_clash import one_pool_per_model
from federator.security.limits import check_capacity

from builders import pool
from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
import vendors  # noqa: E402  (tests/testbed is not a package)

from testbed import NodeSpec  # noqa: E402


def _ready(spec: NodeSpec) -> dict[str, Any]:
    node = spec.manifest()
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return node


def _capacity(b: KubeBackend, *specs: NodeSpec) -> Any:
    for s in specs:
        b.nodes._apply_event(ADDED, _ready(s))
    return b.capacity()


def _nvidia(name: str) -> NodeSpec:
    return NodeSpec(name, vendors.A100, 8, labels=vendors._gfd_labels(vendors.A100, 8, 81920, "ampere"))


def test_a_node_labelled_with_another_vendors_model_name_is_left_out_not_the_members_report(
        caplog: pytest.LogCaptureFixture) -> None:
    odd = vendors.amd_nodes("odd", 1, gpus=4, product=vendors.A100)[0]  # an AMD device plugin, an NVIDIA name
    b = KubeBackend(object(), namespace="w")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="federator.agent.kube"):
        cap = _capacity(b, _nvidia("a100-0"), _nvidia("a100-1"), odd)
    assert [(p.vendor, p.accelerator_model, p.total_accelerators) for p in cap.accelerator_pools] == \
        [("nvidia", vendors.A100, 16)]
    assert ("amd.com/gpu", "unsupported", 4) in cap.left_out
    assert check_capacity(cap) is None  # the federator takes it (it refused both pools' report whole)
    sent = convert.capacity_from_pb(convert.capacity_to_pb(cap))
    assert [p.accelerator_model for p in sent.accelerator_pools] == [vendors.A100]
    warned = [r.getMessage() for r in caplog.records if "one pool per model name" in r.getMessage()]
    assert len(warned) == 1 and "vendor amd" in warned[0] and "vendor nvidia" in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="federator.agent.kube"):
        b.capacity()  # the same clash: said once
    assert not [r for r in caplog.records if "one pool per model name" in r.getMessage()]


def test_the_vendor_the_catalog_says_the_model_is_keeps_it_even_outnumbered_whatever_the_node_order() -> None:
    """new60b N11: 24 mislabelled AMD devices beside 16 real NVIDIA ones took the name, and the NVIDIA job running
    there was counted against the AMD pool."""
    big_amd = vendors.amd_nodes("odd", 2, gpus=8, product=vendors.A100)
    for order in ((_nvidia("a100-0"), *big_amd), (*big_amd, _nvidia("a100-0"))):
        cap = _capacity(KubeBackend(object(), namespace="w"), *order)  # type: ignore[arg-type]
        assert [(p.vendor, p.total_accelerators) for p in cap.accelerator_pools] == [("nvidia", 8)]
        assert ("amd.com/gpu", "unsupported", 16) in cap.left_out


def test_a_name_the_catalog_does_not_know_goes_to_the_pool_of_more_devices_then_the_vendor_first_by_name() -> None:
    small, big = pool("Custom-X1", nodes=1), pool("Custom-X1", nodes=2)
    for pools in ((replace(small, vendor="acme"), replace(big, vendor="zeta")),
                  (replace(big, vendor="zeta"), replace(small, vendor="acme"))):
        kept, left = one_pool_per_model(pools)
        assert [p.vendor for p in kept] == ["zeta"] and [p.vendor for p in left] == ["acme"]
    kept, _ = one_pool_per_model((replace(small, vendor="zeta"), replace(small, vendor="acme")))
    assert [p.vendor for p in kept] == ["acme"]


def test_the_federator_names_both_vendors_of_a_model_listed_twice() -> None:
    """What a third-party agent that reports both pools reads: the field, both vendors, the rule."""
    cap = _capacity(KubeBackend(object(), namespace="w"), _nvidia("a100-0"))  # type: ignore[arg-type]
    (pool,) = cap.accelerator_pools
    twice = replace(cap, accelerator_pools=(pool, replace(pool, vendor="enflame")))
    assert check_capacity(twice) == (f"capacity.accelerator_pools[1].accelerator_model: {vendors.A100!r} is listed "
                                     "twice (vendors nvidia and enflame): one pool per model name")
