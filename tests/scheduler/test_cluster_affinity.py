"""spec.clusters in the pure scheduler: a job goes only to the clusters it names and whose labels its selector
matches, whatever the room or the scores elsewhere; a job no cluster matches waits, saying so (ClusterAffinity),
not as a want of room. Training gangs and inference replicas alike."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scenarios import cycle, n_h100_nodes, placed, spec

from federator.model import (
    ClusterAffinity,
    ClusterInfo,
    JobId,
    JobKind,
    JobSpec,
    LabelOperator,
    LabelRequirement,
    ReasonCode,
)
from federator.scheduler import SchedulerConfig
from federator.scheduler.cluster_affinity import ClusterAffinity as ClusterAffinityFilter
from federator.scheduler.framework import CycleContext, PlacementRequest

PROVIDER = "federator.io/provider"
INF = JobKind.INFERENCE
PRICE = {"Price": 1}


def labelled(n: int, name: str, **labels: str) -> ClusterInfo:
    c = n_h100_nodes(n, name, "r", price=1.0 if n > 1 else 9.0)  # the bigger cluster is the cheaper
    return replace(c, labels=(*c.labels, *((k.replace("_", "/"), v) for k, v in labels.items())))


# a small cluster of provider "oregon-dc" and a bigger, cheaper one of provider "gcp"
SMALL = labelled(1, "oregon-1", **{"federator.io_provider": "oregon-dc", "tier": "gold"})
BIG = labelled(4, "gcp-1", **{"federator.io_provider": "gcp"})
FLEET = [SMALL, BIG]


def pinned(name: str, affinity: ClusterAffinity, **kw: object) -> JobSpec:
    return replace(spec(name, gpus=8, **kw), clusters=affinity)


def requirement(key: str, op: LabelOperator, *values: str) -> ClusterAffinity:
    return ClusterAffinity(match_expressions=(LabelRequirement(key, op, values),))


@pytest.mark.parametrize("affinity", [
    ClusterAffinity(names=("oregon-1",)),
    ClusterAffinity(match_labels=((PROVIDER, "oregon-dc"),)),
    requirement(PROVIDER, LabelOperator.IN, "oregon-dc", "aws"),
    requirement(PROVIDER, LabelOperator.NOT_IN, "gcp"),
    requirement("tier", LabelOperator.EXISTS),
    ClusterAffinity(names=("oregon-1", "gcp-1"), match_labels=(("tier", "gold"),)),  # names AND selector
], ids=["names", "matchLabels", "In", "NotIn", "Exists", "names-and-selector"])
@pytest.mark.parametrize("kind,replicas", [(JobKind.TRAINING, 1), (INF, 1)], ids=["training", "inference"])
def test_a_pinned_job_goes_only_to_the_matching_cluster_though_another_has_more_room(
        affinity: ClusterAffinity, kind: JobKind, replicas: int) -> None:
    unpinned = cycle(FLEET, [spec("free", gpus=8, kind=kind, replicas=replicas)],
                     config=SchedulerConfig(score_weights=PRICE))
    assert placed(unpinned) == {"free": {"gcp-1": 1}}  # where it would go unbound: the bigger, cheaper cluster
    result = cycle(FLEET, [pinned("j", affinity, kind=kind, replicas=replicas)],
                   config=SchedulerConfig(score_weights=PRICE))
    assert placed(result) == {"j": {"oregon-1": 1}}


def test_inference_replicas_stay_on_the_matching_cluster_and_the_rest_wait() -> None:
    job = pinned("serve", ClusterAffinity(match_labels=((PROVIDER, "oregon-dc"),)), kind=INF, replicas=3)
    result = cycle(FLEET, [job], config=SchedulerConfig(score_weights=PRICE))
    assert set(placed(result).get("serve", {})) <= {"oregon-1"}
    assert "gcp-1" not in placed(result).get("serve", {})


def test_a_selector_no_cluster_matches_leaves_the_job_pending_saying_so() -> None:
    job = pinned("j", requirement(PROVIDER, LabelOperator.IN, "aws"))
    result = cycle(FLEET, [job])
    assert placed(result) == {}
    reason = result.pending["j"]
    assert reason.code is ReasonCode.CLUSTER_AFFINITY
    assert "gcp-1: has federator.io/provider=gcp, spec.clusters.selector.matchExpressions[0] asks " \
           "federator.io/provider In (aws)" in reason.message
    assert "oregon-1: has federator.io/provider=oregon-dc" in reason.message


def test_when_the_matching_cluster_is_full_the_reason_is_room_not_affinity() -> None:
    full = replace(n_h100_nodes(0, "oregon-1", "r"), labels=((PROVIDER, "oregon-dc"),))
    result = cycle([full, BIG], [pinned("j", ClusterAffinity(names=("oregon-1",)))])
    assert placed(result) == {}
    reason = result.pending["j"]
    assert reason.code is not ReasonCode.CLUSTER_AFFINITY  # what it waits for is room on oregon-1
    assert "gcp-1: is not among spec.clusters.names (oregon-1)" in reason.message


def test_when_the_matching_cluster_lacks_the_model_the_reason_is_the_model_not_affinity() -> None:
    """The cluster spec.clusters allows has no A100: the job waits for the model (AcceleratorUnavailable), its
    story first; ClusterAffinity, which the clusters left out say, would send the user to widen spec.clusters
    (outside QA N2: it did, as it ranked before the reasons no wait cures)."""
    result = cycle(FLEET, [pinned("j", ClusterAffinity(names=("oregon-1",)), models=("A100",))])
    assert placed(result) == {}
    reason = result.pending["j"]
    assert reason.code is ReasonCode.ACCELERATOR_UNAVAILABLE
    assert reason.message.startswith("0/2 clusters fit: oregon-1"), reason.message
    assert "gcp-1: is not among spec.clusters.names (oregon-1)" in reason.message


def test_a_policy_filters_list_cannot_drop_the_bound() -> None:
    cfg = SchedulerConfig(filters=("ClusterReady", "GangFit", "CpuMemoryFit"), score_weights=PRICE)
    result = cycle(FLEET, [pinned("j", ClusterAffinity(names=("oregon-1",)))], config=cfg)
    assert placed(result) == {"j": {"oregon-1": 1}}


def test_jobs_of_one_shape_with_different_bounds_are_judged_apart() -> None:
    """The fit shape holds spec.clusters: a cycle's shared verdicts never carry one job's bound to another."""
    jobs = [pinned("a", ClusterAffinity(names=("oregon-1",))), pinned("b", ClusterAffinity(names=("gcp-1",))),
            pinned("c", ClusterAffinity(names=("oregon-1",)))]
    result = cycle(FLEET, jobs, config=SchedulerConfig(score_weights=PRICE))
    assert placed(result) == {"a": {"oregon-1": 1}, "b": {"gcp-1": 1}}
    assert result.pending["c"].code is not ReasonCode.CLUSTER_AFFINITY  # oregon-1 is full: room it waits for


@pytest.mark.parametrize("affinity,labels,says", [
    (ClusterAffinity(), (), None),
    (ClusterAffinity(names=("a",)), (), "b: is not among spec.clusters.names (a)"),
    (ClusterAffinity(match_labels=(("k", "v"),)), (), "b: has no label k, spec.clusters.selector.matchLabels asks k=v"),
    (ClusterAffinity(match_labels=(("k", "v"),)), (("k", "w"),),
     "b: has k=w, spec.clusters.selector.matchLabels asks k=v"),
    (requirement("k", LabelOperator.NOT_IN, "v"), (), None),  # NotIn holds without the key, as in Kubernetes
    (requirement("k", LabelOperator.DOES_NOT_EXIST), (("k", "v"),),
     "b: has k=v, spec.clusters.selector.matchExpressions[0] asks k DoesNotExist"),
], ids=["empty", "name", "no-label", "other-value", "notin-absent", "doesnotexist"])
def test_the_filter_names_the_cluster_and_the_field(affinity: ClusterAffinity, labels: tuple[tuple[str, str], ...],
                                                    says: str | None) -> None:
    request = PlacementRequest(JobId("j"), replace(spec("j"), clusters=affinity), 1)
    reason = ClusterAffinityFilter().filter(request, replace(n_h100_nodes(1, "b", "r"), labels=labels),
                                            CycleContext())
    if says is None:
        assert reason is None
    else:
        assert reason is not None and reason.code is ReasonCode.CLUSTER_AFFINITY and reason.message == says
