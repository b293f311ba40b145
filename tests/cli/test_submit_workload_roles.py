"""What `federator submit` says of a brought workload (`spec.workload`) by its roles (server/workload_roles.py).

Outside QA, ML platform E2: a JobSet of a learner 2 x 8, a rollout 4 x 1 and a reward model 1 x 1 that no member
could hold was warned `spec.replicas: no member cluster could hold 7 x 8 ... even empty`, naming a field the user
never wrote and numbers the file does not have. Since 0.20.0 roles that ask unequal amounts are a gang of pod sets,
held and billed at what each asks (model/pod_sets.py): nothing is said of them. Over the real gRPC Submit, its
warnings printed by the CLI.
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
    resources: dict[str, object] = {"requests": {"nvidia.com/gpu": gpus, "cpu": "4"},
                                    "limits": {"nvidia.com/gpu": gpus}} if gpus else {"requests": {"cpu": "1"}}
    return {"name": name, "replicas": 1, "template": {"spec": {
        "parallelism": pods, "completions": pods, "completionMode": "Indexed",
        "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": name, "image": "rl:1", "resources": resources}]}}}}}


def _jobset(name: str, *roles: tuple[str, int, int]) -> dict[str, Any]:
    workload = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": name},
                "spec": {"replicatedJobs": [_role(*r) for r in roles]}}
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
            "spec": {"acceleratorModels": ["H100"], "workload": workload}}


def _submit(tmp_path: Path, capsys: pytest.CaptureFixture[str], *docs: dict[str, Any], nodes: int = 2) -> list[str]:
    """The warnings `federator submit` printed for `docs`, against a federator whose one member has `nodes` nodes
    of 8 H100 (2: 16 in all)."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool(H100, nodes=nodes)).capacity)
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    with serving(fed) as address:
        assert main(["submit", "-f", str(path), "--server", address, "--insecure"]) == 0
    return [line.split("): ", 1)[1] for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]


def test_a_workload_no_member_could_hold_is_warned_in_the_words_of_its_roles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    never = [w for w in _submit(tmp_path, capsys, _jobset("sft", ("trainer", 6, 8), ("eval", 1, 8)),
                                _jobset("rl", ("learner", 2, 8), ("rollout", 4, 1), ("reward", 1, 1)))
             if "even empty" in w]  # sft: roles that ask alike, 7 equal pods of 8; rl: 21 on a member of 16
    assert len(never) == 2, never
    assert never[1] == (  # a gang of pod sets, named at what each role asks (JobSpec.pod_sets)
        "spec.workload: no member cluster could hold the pod sets learner 2 x 8, rollout 4 x 1, reward 1 x 1 "
        "accelerators (21 in all) H100 together even empty (the largest, east-1, has 16 NVIDIA-H100-80GB-HBM3 on 2 "
        "nodes): it can never run as the fleet stands (cancel it and submit a smaller one, or it waits until the "
        "fleet grows to hold it); the job is accepted"), never
    never = never[:1]
    for warning, roles in zip(never, ("trainer 6 x 8, eval 1 x 8",), strict=True):
        assert warning.startswith("spec.workload: no member cluster could hold 7 x 8 ")  # not spec.replicas
        assert "spec.replicas" not in warning
        assert warning.endswith(f"; its pod sets ({roles} nvidia.com/gpu) are reserved as 7 x 8: the largest role's "
                                "ask times all pods (CPU and memory alike); the job is accepted"), warning


def test_roles_that_ask_unequal_amounts_draw_no_warning_now_that_each_is_held_and_billed_at_its_ask(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Outside QA, ML platform E2: a JobSet learner 1 x 8 + rollout 1 x 1 ran and was billed 16 accelerators for 9
    held; stop 60 warned of it at submit ("billed as 7 x 8 = 56"). Since 0.20.0 the roles are a gang of pod sets,
    held and billed at 21 (tests/server/test_pod_set_gang.py): nothing to warn of. Roles that ask alike, and
    CPU-only roles beside them (a driver, which the gang does not count), draw nothing either."""
    said = _submit(tmp_path, capsys, _jobset("rl", ("learner", 2, 8), ("rollout", 4, 1), ("reward", 1, 1)),
                   _jobset("ddp", ("trainer", 3, 8), ("eval", 1, 8)), _jobset("driven", ("driver", 1, 0),
                                                                                ("workers", 2, 8)), nodes=8)
    assert said == []


def test_get_jobs_of_a_gang_of_pod_sets_shows_what_it_holds_and_its_roles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`federator get jobs NAME` of the RL JobSet over the real gRPC Get: ACCELERATORS 21 (not 56), and a line naming
    its pod sets (JobSpec.pod_sets, which the federator derived at Submit)."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    path = tmp_path / "rl.yaml"
    path.write_text(yaml.safe_dump(_jobset("rl", ("learner", 2, 8), ("rollout", 4, 1), ("reward", 1, 1))))
    with serving(fed) as address:
        assert main(["submit", "-f", str(path), "--server", address, "--insecure"]) == 0
        capsys.readouterr()
        assert main(["get", "jobs", "rl", "--server", address, "--insecure"]) == 0
    out = capsys.readouterr().out.splitlines()
    header, row = out[0].split(), out[1].split()
    assert row[header.index("ACCELERATORS")] == "21", out
    assert "pod sets: learner 2 x 8, rollout 4 x 1, reward 1 x 1 accelerators (21 in all), one cluster, one model" \
        in out, out


def test_a_leaderworkerset_whose_roles_differ_is_still_warned_it_is_held_at_the_largest_ask(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Spread work is not a gang of pod sets: a LeaderWorkerSet's groups are equal replicas at the largest ask, so
    Submit still says what that costs (2 leaders of 1 and 6 workers of 8: 50 asked, held as 8 x 8)."""
    def pod(name: str, gpus: int) -> dict[str, Any]:
        return {"spec": {"containers": [{"name": name, "image": "vllm:1", "resources": {
            "requests": {"nvidia.com/gpu": gpus, "cpu": "4"}, "limits": {"nvidia.com/gpu": gpus}}}]}}

    lws = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "llm"},
           "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 4, "leaderTemplate": pod("leader", 1),
                                                            "workerTemplate": pod("worker", 8)}}}
    said = _submit(tmp_path, capsys, {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                      "metadata": {"name": "llm"},
                                      "spec": {"acceleratorModels": ["H100"], "workload": lws}}, nodes=8)
    assert [w for w in said if "billed as" in w] == [
        "spec.workload: its pod sets ask 50 nvidia.com/gpu in all (leader 2 x 1, workers 6 x 8), but spread work is "
        "replicas of equal pods on one model: it is reserved, counted against your quota and billed as 8 x 8 = 64 "
        "(the largest role's ask times all pods); to hold and pay for what each role asks, submit the roles as jobs "
        "of their own, each with its own model and count (a job without spec.workload may ask a fraction of a "
        "device)"], said


def test_get_jobs_wide_says_a_gang_of_pod_sets_accelerator_in_its_roles_not_per_pod_at_the_largest_ask(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`federator get jobs -o wide` of the RL JobSet, pending: its ACCELERATOR column read "8 x nvidia
    H100", each pod at the largest ask, beside ACCELERATORS 21; it says the roles and their total, as `get job
    NAME` does. A job of equal replicas still reads per replica."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    path = tmp_path / "rl.yaml"
    plain = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "plain"},
             "spec": {"kind": "training", "replicas": 3, "resources": {"cpu": "1", "nvidia.com/gpu": 8},
                      "acceleratorModels": ["H100"]}}
    path.write_text(yaml.safe_dump_all([_jobset("rl", ("learner", 2, 8), ("rollout", 4, 1), ("reward", 1, 1)),
                                        plain]))
    with serving(fed) as address:
        assert main(["submit", "-f", str(path), "--server", address, "--insecure"]) == 0
        capsys.readouterr()
        assert main(["get", "jobs", "-o", "wide", "--server", address, "--insecure"]) == 0
    out = capsys.readouterr().out.splitlines()
    rl = next(line for line in out if line.startswith("rl"))
    assert "learner 2 x 8, rollout 4 x 1, reward 1 x 1 nvidia H100 (21 in all)" in rl, out
    assert "8 x nvidia H100" not in rl, out
    plain_row = next(line for line in out if line.startswith("plain"))
    assert " 8 x nvidia H100 " in plain_row, plain_row
