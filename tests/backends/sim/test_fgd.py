"""FGD node binding in simulated clusters: the node where expected fragmentation grows least."""

from __future__ import annotations

from federator.backends.sim.fgd import Workload, class_fragment
from federator.backends.sim.fleet import NodeSpec
from federator.backends.sim.nodes import NodeSet
from federator.model import Resources
from federator.scheduler.framework import model_matches

GiB = 2**30


def node(name: str, model: str, gpus: int, *, busy: int = 0) -> NodeSpec:
    return NodeSpec(name, model, gpus, 64_000, 512 * GiB, busy, busy * 8000, busy * 64 * GiB)


def where(ns: NodeSet, key: str) -> tuple[str, tuple[int, ...]]:
    b = ns.bound[key][0]
    return ns.nodes[b.node].spec.name, b.slots


def test_a_fraction_goes_to_the_gpu_already_shared() -> None:
    """With whole-GPU work in the workload, opening a second GPU would strand two halves."""
    target = Workload.of([(Resources(1000, GiB, 500), (), 1.0), (Resources(1000, GiB, 1000), (), 1.0)],
                         ["A10"], model_matches)
    ns = NodeSet.of([node("fresh", "A10", 1), node("shared", "A10", 1)], fit="fgd", workload=target)
    assert ns.bind("a", replicas=1, resources=Resources(1000, GiB, 500), accelerator_model="A10") is None
    first = where(ns, "a")[0]
    assert ns.bind("b", replicas=1, resources=Resources(1000, GiB, 400), accelerator_model="A10") is None
    assert where(ns, "b")[0] == first  # packs onto the half-used GPU, the other stays whole


def test_a_single_gpu_replica_keeps_a_whole_node_for_the_gangs_the_workload_holds() -> None:
    target = Workload.of([(Resources(8000, GiB, 8000), (), 1.0), (Resources(1000, GiB, 1000), (), 1.0)],
                         ["H100"], model_matches)
    ns = NodeSet.of([node("idle", "H100", 8), node("busy", "H100", 8, busy=5)], fit="fgd", workload=target)
    assert ns.bind("one", replicas=1, resources=Resources(1000, GiB, 1000), accelerator_model="H100") is None
    assert where(ns, "one")[0] == "busy"


def test_flexible_work_leaves_the_model_pinned_work_needs() -> None:
    target = Workload.of([(Resources(1000, GiB, 1000), ("A100",), 3.0), (Resources(1000, GiB, 1000), (), 1.0)],
                         ["A100", "H100"], model_matches)
    ns = NodeSet.of([node("a", "A100", 8), node("h", "H100", 8)], fit="fgd", workload=target)
    assert ns.bind("flex", replicas=1, resources=Resources(1000, GiB, 1000), accelerator_model="*") is None
    assert where(ns, "flex")[0] == "h"


def test_class_fragment_is_what_a_task_cannot_use() -> None:
    from federator.backends.sim.fgd import TaskClass

    half = TaskClass(500, 1, 0, 0, 1.0)
    two = TaskClass(1000, 2, 0, 0, 1.0)
    assert class_fragment([1000, 300, 200], True, half) == 500  # the two small leftovers
    assert class_fragment([1000, 300, 200], True, two) == 1500  # only one whole GPU: none of it usable
    assert class_fragment([1000, 1000], False, half) == 2000  # no room on the host: all of it
