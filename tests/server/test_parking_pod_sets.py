"""A parked gang of pod sets comes back when a report shows room for its largest set (server/parking.py).

Parked as 7 replicas at the largest ask (the RL JobSet: learner 2 x 8, rollout 4 x 1, reward 1 x 1), a report of a
member with 24 free H100 never brought it back: only a placement ending anywhere did, so it waited beside room that
fits it (JobSpec.pod_sets, 0.20.0)."""

from __future__ import annotations

from dataclasses import replace

from federator.model import Resources
from federator.model.pod_sets import PodSetAsk
from federator.server.parking import needs_of

from builders import cluster, job, pool

H100 = "NVIDIA-H100-80GB-HBM3"
GiB = 2**30


def test_a_gang_of_pod_sets_needs_room_for_its_largest_set_not_its_pods_at_the_largest_ask() -> None:
    rl = replace(job("rl", replicas=7, gpus=8, cpu=8, memory_gib=64, models=(H100,)), pod_sets=(
        PodSetAsk("learner", 2, Resources(8000, 64 * GiB, 8000)),
        PodSetAsk("rollout", 4, Resources(2000, 16 * GiB, 1000)),
        PodSetAsk("reward", 1, Resources(2000, 16 * GiB, 1000))))
    ((model, need),) = needs_of(rl)
    assert model == H100 and (need.milli, need.replicas) == (8000, 2)
    room = cluster("east-1", "r", pool(H100, nodes=3)).capacity  # 24 free: the gang fits
    assert need.met_by(room, room.pool(H100))
    ((_, equal),) = needs_of(replace(rl, pod_sets=()))  # as 0.19.0 counted it: 7 x 8, which 24 never meet
    assert not equal.met_by(room, room.pool(H100))


def test_a_parked_elastic_gang_comes_back_for_room_for_its_minimum() -> None:
    """An elastic gang (model/elastic.py) parked while not even its minimum fit is brought back by room for that
    minimum, not only by room for the whole gang it may never get."""
    gang = replace(job("ft", replicas=4, gpus=8, models=(H100,)), min_replicas=2)
    ((_, need),) = needs_of(gang)
    assert need.replicas == 2
    room = cluster("east-1", "r", pool(H100, nodes=2)).capacity  # 2 of 4 fit
    assert need.met_by(room, room.pool(H100))
    ((_, whole),) = needs_of(replace(gang, min_replicas=0))
    assert not whole.met_by(room, room.pool(H100))
