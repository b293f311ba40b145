"""What `federator submit` says of a brought workload (`spec.workload`) whose roles ask different amounts: its
pods are one gang of equal pods, each at the largest role's ask (server/workload_roles.py).

Outside QA, ML platform E2: a JobSet of a learner 2 x 8, a rollout 4 x 1 and a reward model 1 x 1 that no member
could hold was warned `spec.replicas: no member cluster could hold 7 x 8 ... even empty`, naming a field the user
never wrote and numbers the file does not have. Over the real gRPC Submit, its warnings printed by the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_support import serving

from federator.cli import main
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"


def _role(name: str, pods: int, gpus: int) -> dict[str, Any]:
    ask = {"nvidia.com/gpu": gpus, "cpu": "4"}
    return {"name": name, "replicas": 1, "template": {"spec": {
        "parallelism": pods, "completions": pods, "completionMode": "Indexed",
        "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": name, "image": "rl:1", "resources": {"requests": ask, "limits": {"nvidia.com/gpu": gpus}}}]}}}}}


def _jobset(name: str, *roles: tuple[str, int, int]) -> dict[str, Any]:
    workload = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": name},
                "spec": {"replicatedJobs": [_role(*r) for r in roles]}}
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
            "spec": {"acceleratorModels": ["H100"], "workload": workload}}


def _submit(tmp_path: Path, capsys: pytest.CaptureFixture[str], *docs: dict[str, Any]) -> list[str]:
    """The warnings `federator submit` printed for `docs`, against a federator whose one member has 2 nodes of
    8 H100 (16 in all)."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool(H100, nodes=2)).capacity)
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    with serving(fed) as address:
        assert main(["submit", "-f", str(path), "--server", address, "--insecure"]) == 0
    return [line.split("): ", 1)[1] for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]


def test_a_workload_no_member_could_hold_is_warned_in_the_words_of_its_roles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    never = [w for w in _submit(tmp_path, capsys, _jobset("rl", ("learner", 2, 8), ("rollout", 4, 1), ("reward", 1, 1)),
                                _jobset("sft", ("trainer", 6, 8), ("eval", 1, 8)))  # 7 x 8 too, other roles
             if "even empty" in w]
    assert len(never) == 2, never
    for warning, roles in zip(never, ("learner 2 x 8, rollout 4 x 1, reward 1 x 1", "trainer 6 x 8, eval 1 x 8"),
                              strict=True):
        assert warning.startswith("spec.workload: no member cluster could hold 7 x 8 ")  # not spec.replicas
        assert "spec.replicas" not in warning
        assert warning.endswith(f"; its pod sets ({roles} nvidia.com/gpu) are reserved as 7 x 8: the largest role's "
                                "ask times all pods (CPU and memory alike); the job is accepted"), warning
