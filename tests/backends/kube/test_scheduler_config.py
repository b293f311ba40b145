"""The member scheduler check: MostAllocated over accelerators keeps the resource model valid."""

from __future__ import annotations

import pytest
import yaml

from federator.backends.kube.scheduler_config import check_scheduler_config

HEAD = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"


def fit(kind: str, *resources: str) -> str:
    strategy: dict[str, object] = {"type": kind, "resources": [{"name": r, "weight": 1} for r in resources]}
    return yaml.safe_dump({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                           "profiles": [{"schedulerName": "default-scheduler", "pluginConfig": [
                               {"name": "NodeResourcesFit", "args": {"scoringStrategy": strategy}}]}]})


@pytest.mark.parametrize(("text", "scoring", "problem"), [
    (fit("MostAllocated", "cpu", "nvidia.com/gpu"), "MostAllocated", ""),
    (fit("MostAllocated", "cpu", "memory"), "MostAllocated", "weighs only cpu, memory"),
    (fit("LeastAllocated", "nvidia.com/gpu"), "LeastAllocated", "spreads"),
    (HEAD, "LeastAllocated", "spreads"),
    ("kind: Deployment\n", "Unknown", "kind: expected KubeSchedulerConfiguration"),
    (yaml.safe_dump({"kind": "ConfigMap", "data": {"config.yaml": fit("MostAllocated", "amd.com/gpu")}}),
     "MostAllocated", ""),
], ids=["most-allocated-gpus", "most-allocated-host-only", "least-allocated", "defaults", "not-a-config",
        "configmap"])
def test_scoring_strategy_is_read_and_judged(text: str, scoring: str, problem: str) -> None:
    check = check_scheduler_config(text, source="sched.yaml")
    assert check.scoring == scoring
    if problem:
        assert len(check.problems) == 1 and problem in check.problems[0] and "sched.yaml" in check.problems[0]
    else:
        assert check.ok, check.problems


def test_a_scheduler_config_that_is_not_yaml_says_where_in_one_line() -> None:
    check = check_scheduler_config("profiles: [\n", source="sched.yaml")
    assert check.scoring == "Unknown"
    assert check.problems == ("sched.yaml: not valid YAML: expected the node content, but found '<stream end>' "
                              "(line 2, column 1)",)
