"""Submit's warning for an elastic gang whose minimum no member could hold even empty names spec.minReplicas and
the lower minimum that would run (server/fleet_models.py `lower_minimum`).

elasticqa63: replicas 4, minReplicas 3 of 8 H100, the largest member 2 H100 nodes: the warning named spec.replicas
and told the user to "submit a smaller one", while a minReplicas of 2 would have started at once.
"""

from __future__ import annotations

from dataclasses import replace

from federator.model import ClusterState, JobSpec
from federator.server.fleet_models import fleet_fit_warnings

from builders import cluster, pool
from builders import job as job_spec

H100 = "NVIDIA-H100-80GB-HBM3"


def _gang(low: int) -> JobSpec:
    return replace(job_spec("ft", replicas=4, gpus=8, models=(H100,)), min_replicas=low)


def _members(*pools: object) -> list[tuple[str, str, ClusterState, object]]:
    out = []
    for i, p in enumerate(pools):
        c = cluster(f"m{i}", "r", p)  # type: ignore[arg-type]
        out.append((c.name, c.region, c.state, c.capacity))
    return out


def test_a_minimum_too_large_for_any_member_names_the_minimum_and_one_that_starts_now() -> None:
    [said] = fleet_fit_warnings(_gang(3), _members(pool(H100, nodes=2)))  # type: ignore[arg-type]
    assert said.startswith(f"spec.minReplicas: no member cluster could hold 3 x 8 {H100} even empty"), said
    assert "with spec.minReplicas 2 it would start now (cancel it and submit it with that minimum)" in said, said


def test_when_the_lower_minimum_has_no_room_now_it_says_it_could_run_once_there_is() -> None:
    busy = pool(H100, nodes=0, extra={0: 2})  # 2 nodes, both busy
    [said] = fleet_fit_warnings(_gang(3), _members(busy))  # type: ignore[arg-type]
    assert "with spec.minReplicas 2 it could run on the fleet as it stands, once a member has room for 2" in said


def test_a_gang_not_elastic_is_warned_as_before() -> None:
    [said] = fleet_fit_warnings(_gang(0), _members(pool(H100, nodes=2)))  # type: ignore[arg-type]
    assert said.startswith(f"spec.replicas: no member cluster could hold 4 x 8 {H100} even empty"), said
    assert "minReplicas" not in said
