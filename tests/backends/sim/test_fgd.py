"""FGD node binding in simulated clusters: the node where expected fragmentation grows least."""

from __future__ import annotations

from dataclasses import replace

from federator.backends.sim.fgd import DemandLearner, Workload, class_fragment
from federator.backends.sim.fleet import ClusterSpec, NodeSpec
from federator.backends.sim.nodes import NodeSet
from federator.model import AcceleratorAlternative, Resources
from federator.scheduler.framework import model_matches
from federator.simulate import SimJob, Simulation

from builders import job

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


def test_a_shared_learner_binds_for_the_federations_workload_not_the_clusters_slice() -> None:
    """A cluster the federator sends only 4-GPU jobs, learning from its own binds, sees no reason to
    keep an 8-GPU node whole and opens the fresh one; fed the work offered to the whole federation
    (whole-node jobs included, as the simulator feeds one learner for every cluster), it fills the half
    node instead."""
    gib = 2**30
    specs = [NodeSpec("fresh", "A100", 8, 64_000, 512 * gib),
             NodeSpec("half", "A100", 8, 64_000, 512 * gib, busy_accelerators=4)]
    four = Resources(accelerator_milli=4000, cpu_milli=1000, memory_bytes=gib)
    eight = Resources(accelerator_milli=8000, cpu_milli=1000, memory_bytes=gib)
    alone = NodeSet.of(specs)
    assert alone.bind("a", replicas=1, resources=four, accelerator_model="A100") is None
    assert alone.bound["a"][0].node == 0
    learner = DemandLearner()
    for _ in range(3):
        learner.observe(eight, ())
        learner.observe(four, ())
    shared = NodeSet.of(specs, learner=learner)
    assert shared.bind("a", replicas=1, resources=four, accelerator_model="A100") is None
    assert shared.bound["a"][0].node == 1
    assert learner.count == 6  # the owner feeds it; binds do not


def test_the_simulator_feeds_every_cluster_one_learner_of_the_offered_work() -> None:
    fleet = {f"c{i}": ClusterSpec(f"c{i}", f"r{i}", (), (NodeSpec(f"n{i}", "A100", 8, 64_000, 2**39),))
             for i in range(2)}
    jobs = [SimJob(job(f"j{i}", gpus=g), float(i), None) for i, g in enumerate((8, 4, 4, 1))]
    sim = Simulation(fleet, jobs, batch=2)
    sim.run("fill")
    assert sim.learner is not None and sim.learner.count == len(jobs)
    assert all(c.nodes._learner is sim.learner for c in sim.clusters.values())


def test_the_simulator_learns_the_counts_of_jobs_with_alternatives() -> None:
    """A job asking by alternatives (`spec.accelerators`, or a trace pod that may run on several vendors) has its
    count in each alternative and CPU and memory alone in its resources: read as the one-count form, the learner
    saw CPU-only work, and FGD bound on a mixed fleet for a workload without it. Alternatives of one count are one
    shape on any of their models; of different counts, one shape per count at a share of the job."""
    fleet = {"nv": ClusterSpec("nv", "r0", (), (node("h0", "H100", 8),)),
             "hw": ClusterSpec("hw", "r1", (), (NodeSpec("a0", "Ascend910B", 16, 64_000, 512 * GiB,
                                                         vendor="huawei"),))}
    base = job("either", cpu=4)
    same = replace(base, accelerators=(AcceleratorAlternative(8000, model="H100", vendor="nvidia"),
                                       AcceleratorAlternative(8000, model="Ascend910B", vendor="huawei")))
    split = replace(base, name="split", accelerators=(AcceleratorAlternative(8000, model="H100", vendor="nvidia"),
                                                      AcceleratorAlternative(16000, model="Ascend910B",
                                                                             vendor="huawei")))
    sim = Simulation(fleet, [SimJob(same, 0.0, None), SimJob(split, 1.0, None)])
    sim.run("fill")
    assert sim.learner is not None
    load = sim.learner.workload(["H100", "Ascend910B"], model_matches)
    # From H100: the first job whole (8 on either), the second's 8-device half; from Ascend910B: the first job,
    # and the second's 16-device half. CPU-only, each model's classes were empty and all of it "cannot".
    assert [(c.gpus, c.weight) for c in load.classes["H100"]] == [(8, 0.75)]
    assert [(c.gpus, c.weight) for c in load.classes["Ascend910B"]] == [(8, 0.5), (16, 0.25)]
    assert load.cannot == {"H100": 0.25, "Ascend910B": 0.25}
