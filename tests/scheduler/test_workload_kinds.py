"""Jobs that bring their own workload: only clusters that serve the kind, and groups kept whole."""

from __future__ import annotations

import json
from dataclasses import replace

from scenarios import H100, cycle, placed, spec

from federator.model import ClusterInfo, JobKind, ReasonCode

from builders import cluster, pool

JOBSET = json.dumps({"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "spec": {}})
LWS = json.dumps({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "spec": {}})


def serving(c: ClusterInfo, *kinds: str) -> ClusterInfo:
    return replace(c, capacity=replace(c.capacity, workload_kinds=frozenset(kinds)))


def test_a_jobset_goes_only_where_jobsets_run() -> None:
    plain = cluster("plain", "r", pool(H100, nodes=4))
    with_jobset = serving(cluster("js", "r", pool(H100, nodes=1)), "Job.batch", "JobSet.jobset.x-k8s.io")
    job = replace(spec("pretrain", replicas=1, gpus=8), workload_json=JOBSET)
    assert placed(cycle([plain, with_jobset], [job])) == {"pretrain": {"js": 1}}


def test_no_cluster_with_the_kind_is_the_pending_reason_naming_it() -> None:
    plain = cluster("plain", "r", pool(H100, nodes=4))
    job = replace(spec("pretrain", replicas=1, gpus=8), workload_json=JOBSET)
    result = cycle([plain], [job])
    reason = result.pending["pretrain"]
    assert reason.code is ReasonCode.WORKLOAD_KIND_UNSUPPORTED
    assert "plain does not run JobSet.jobset.x-k8s.io" in reason.message


def test_an_agent_that_lists_no_kinds_runs_the_built_in_ones() -> None:
    plain = cluster("plain", "r", pool(H100, nodes=1))
    job = replace(spec("own-job", replicas=1, gpus=8),
                  workload_json=json.dumps({"apiVersion": "batch/v1", "kind": "Job", "spec": {}}))
    assert placed(cycle([plain], [job])) == {"own-job": {"plain": 1}}


def test_groups_spread_whole() -> None:
    # 3 groups of 4 pods x 8 accelerators; a holds 5 nodes (one group, not 1.25), b holds 8 (two groups).
    a = serving(cluster("a", "r", pool(H100, nodes=5)), "LeaderWorkerSet.leaderworkerset.x-k8s.io")
    b = serving(cluster("b", "r", pool(H100, nodes=8)), "LeaderWorkerSet.leaderworkerset.x-k8s.io")
    job = replace(spec("llm", kind=JobKind.INFERENCE, replicas=12, gpus=8), workload_json=LWS, group_size=4)
    got = placed(cycle([a, b], [job]))["llm"]
    assert sum(got.values()) == 12 and all(n % 4 == 0 for n in got.values()), got


def test_a_group_that_fits_nowhere_whole_waits() -> None:
    a = serving(cluster("a", "r", pool(H100, nodes=3)), "LeaderWorkerSet.leaderworkerset.x-k8s.io")
    b = serving(cluster("b", "r", pool(H100, nodes=3)), "LeaderWorkerSet.leaderworkerset.x-k8s.io")
    job = replace(spec("llm", kind=JobKind.INFERENCE, replicas=4, gpus=8), workload_json=LWS, group_size=4)
    result = cycle([a, b], [job])  # 6 nodes free in all, but no cluster holds a group of 4
    assert "llm" not in placed(result) and "llm" in result.pending
