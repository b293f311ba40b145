"""What the agent rendered against what the member holds (drift.py): a change made behind the agent's back is drift,
what the API server or Kueue adds is not.

Outside inference team F4: `kubectl set image` and removing the pod template's `nvidia.com/gpu.product` node
selector (the model pin the federator bills) were never reverted, and `kubectl scale lws` ran a second group."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest

from federator.backends.kube.admission import kueue_admit
from federator.backends.kube.capacity import GPU_PRODUCT_LABEL
from federator.backends.kube.drift import (
    RECORD_ANNOTATION,
    DriftGuard,
    RevertBudget,
    baseline,
    drifted,
    record,
    recorded,
    revert_patch,
)
from federator.backends.kube.workloads import REPLICAS_ANNOTATION, build_workload
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources

H100 = "NVIDIA-H100-80GB-HBM3"
TEMPLATE = {"spec": {"containers": [{"name": "server", "image": "vllm/vllm-openai:v0.9", "args": ["--port", "8000"]}]}}
SERVE = JobSpec(name="chat", kind=JobKind.INFERENCE, replicas=2, pod_template_json=json.dumps(TEMPLATE),
                resources=Resources(cpu_milli=500, memory_bytes=2**30, accelerator_milli=1000))
PLACEMENT = Placement(PlacementId("chat-abc.g1.member-a"), JobId("chat-abc"), "member-a", "east", 2, H100, 1)
LWS = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "llm"},
       "spec": {"replicas": 1, "leaderWorkerTemplate": {"size": 2, "workerTemplate": {"spec": {"containers": [
           {"name": "vllm", "image": "vllm/vllm-openai:v0.9", "resources": {"limits": {"nvidia.com/gpu": 8}}}]}}}}}


def made() -> dict[str, Any]:
    """The Deployment the agent creates for PLACEMENT (its record on it)."""
    return record(build_workload(PLACEMENT, SERVE, namespace="w"))


def stored(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as the API server and the Deployment controller hold it: defaults everywhere, quantities canonical."""
    out = copy.deepcopy(obj)
    out["metadata"].update(uid="uid-1", resourceVersion="7", generation=1)
    out["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    spec = out["spec"]
    spec.update(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                revisionHistoryLimit=10, progressDeadlineSeconds=600)
    pod = spec["template"]["spec"]
    pod.update(dnsPolicy="ClusterFirst", schedulerName="default-scheduler", securityContext={},
               terminationGracePeriodSeconds=30)
    for c in pod["containers"]:
        c.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log",
                 terminationMessagePolicy="File")
        c["resources"]["requests"]["cpu"] = "0.5" if c["resources"]["requests"].get("cpu") == "500m" else \
            c["resources"]["requests"].get("cpu")
    out["status"] = {"replicas": 2, "readyReplicas": 2}
    return out


def container(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"]["template"]["spec"]["containers"][0])


def test_what_the_api_server_and_controllers_add_is_not_drift() -> None:
    manifest = build_workload(PLACEMENT, SERVE, namespace="w")
    manifest["spec"]["template"]["spec"]["hostNetwork"] = False  # the API server drops a false or empty field
    manifest["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "EMPTY", "value": ""})
    rendered = record(manifest)
    live = stored(rendered)
    del live["spec"]["template"]["spec"]["hostNetwork"]
    del live["spec"]["template"]["spec"]["containers"][0]["env"][-1]["value"]
    live["metadata"]["labels"]["team"] = "serving"  # someone's label, and kubectl rollout restart's annotation
    live["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "2026-12-05T16:00:00Z"
    assert container(live)["resources"]["requests"]["cpu"] == "0.5"  # "500m" as rendered: the same quantity
    assert drifted(baseline(rendered), live) == []


def test_an_image_change_is_drift_and_the_patch_puts_the_rendered_containers_back() -> None:
    rendered = made()
    live = stored(rendered)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/image:1"  # kubectl set image
    found = drifted(baseline(rendered), live)
    assert [(d.path, d.want, d.have) for d in found] == [
        ("spec.template.spec.containers[server].image", "vllm/vllm-openai:v0.9", "evil/image:1")]
    patch = revert_patch(baseline(rendered), live, found)
    assert patch == {"metadata": {"uid": "uid-1"},
                     "spec": {"template": {"spec": {"containers": rendered["spec"]["template"]["spec"]["containers"]}}}}


def test_a_removed_model_pin_is_drift_and_the_patch_puts_it_back_alone() -> None:
    rendered = made()
    assert rendered["spec"]["template"]["spec"]["nodeSelector"] == {GPU_PRODUCT_LABEL: H100}
    live = stored(rendered)
    del live["spec"]["template"]["spec"]["nodeSelector"]
    found = drifted(baseline(rendered), live)
    assert [(d.path, d.have) for d in found] == [
        (f"spec.template.spec.nodeSelector[{GPU_PRODUCT_LABEL}]", None)]
    assert str(found[0]) == f"spec.template.spec.nodeSelector[{GPU_PRODUCT_LABEL}]: {H100} -> (none)"
    assert revert_patch(baseline(rendered), live, found)["spec"] == {
        "template": {"spec": {"nodeSelector": {GPU_PRODUCT_LABEL: H100}}}}


def test_an_added_container_env_var_or_toleration_is_drift() -> None:
    rendered = made()
    for change in ("container", "env", "toleration"):
        live = stored(rendered)
        pod = live["spec"]["template"]["spec"]
        if change == "container":
            pod["containers"].append({"name": "miner", "image": "evil/miner:1"})
        elif change == "env":
            pod["containers"][0]["env"].append({"name": "LD_PRELOAD", "value": "/tmp/x.so"})
        else:
            pod["tolerations"].append({"operator": "Exists"})
        assert len(drifted(baseline(rendered), live)) == 1, change


def test_a_scaled_leaderworkerset_is_drift_and_its_size_too() -> None:
    placement = Placement(PlacementId("llm-abc.g1.member-a"), JobId("llm-abc"), "member-a", "east", 2, H100, 1)
    spec = JobSpec(name="llm", kind=JobKind.INFERENCE, replicas=2, resources=Resources(),
                   workload_json=json.dumps(LWS))
    rendered = record(build_workload(placement, spec, namespace="w"))
    assert rendered["spec"]["replicas"] == 1
    live = copy.deepcopy(rendered)
    live["spec"]["replicas"] = 2  # kubectl scale lws --replicas=2
    live["spec"]["leaderWorkerTemplate"]["size"] = 1
    live["spec"]["rolloutStrategy"] = {"type": "RollingUpdate"}  # LWS's webhook default
    found = drifted(baseline(rendered), live)
    assert [(d.path, d.want, d.have) for d in found] == [("spec.replicas", 1, 2),
                                                          ("spec.leaderWorkerTemplate.size", 2, 1)]
    assert revert_patch(baseline(rendered), live, found) == {"spec": {"replicas": 1,
                                                                     "leaderWorkerTemplate": {"size": 2}}}


def test_kueue_suspending_and_admitting_is_not_drift_in_kueue_mode() -> None:
    """Kueue flips spec.suspend, and on admission adds its flavor's node labels, tolerations and scheduling gates
    to the pod template (RunWithPodSetsInfo): none of that is drift in Kueue mode. Outside it an added toleration
    is (a node the federator never placed on), and the suspend field never is."""
    job = JobSpec(name="train", kind=JobKind.TRAINING, replicas=2, resources=SERVE.resources)
    placement = Placement(PlacementId("train-abc.g1.member-a"), JobId("train-abc"), "member-a", "east", 2, H100, 1)
    manifest = kueue_admit(build_workload(placement, job, namespace="w"), "team-a")
    manifest["spec"]["template"]["spec"]["schedulingGates"] = [{"name": "example.com/warm-up"}]  # the user's own
    rendered = record(manifest)
    assert rendered["spec"]["suspend"] is True
    live = copy.deepcopy(rendered)
    live["spec"]["suspend"] = False
    live["spec"]["parallelism"] = 1  # partial admission
    pod = live["spec"]["template"]["spec"]
    pod["nodeSelector"]["cloud.example.com/flavor"] = "h100-spot"
    pod["tolerations"].append({"key": "spot", "operator": "Exists", "effect": "NoSchedule"})
    pod["schedulingGates"].append({"name": "kueue.x-k8s.io/topology"})
    live["spec"]["template"]["metadata"]["labels"]["kueue.x-k8s.io/podset"] = "main"
    assert drifted(baseline(rendered), live, kueue=True) == []
    assert sorted(d.path for d in drifted(baseline(rendered), live)) == [
        "spec.parallelism", "spec.template.spec.schedulingGates", "spec.template.spec.tolerations"]
    del pod["nodeSelector"][GPU_PRODUCT_LABEL]  # Kueue never removes what the agent set: that is drift still
    found = drifted(baseline(rendered), live, kueue=True)
    assert [d.path for d in found] == [f"spec.template.spec.nodeSelector[{GPU_PRODUCT_LABEL}]"]
    live["spec"]["template"]["spec"]["tolerations"] = pod["tolerations"][-1:]  # the rendered one removed
    found = drifted(baseline(rendered), live, kueue=True)
    patch = revert_patch(baseline(rendered), live, found, kueue=True)
    assert patch["spec"]["template"]["spec"]["tolerations"] == [
        *rendered["spec"]["template"]["spec"]["tolerations"], {"key": "spot", "operator": "Exists",
                                                               "effect": "NoSchedule"}]  # Kueue's kept


def test_the_record_on_the_object_says_what_was_rendered_after_a_restart() -> None:
    rendered = made()
    assert recorded(rendered) == baseline(rendered)
    live = stored(rendered)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/image:1"
    del live["spec"]["template"]["spec"]["nodeSelector"]
    guard = DriftGuard()  # a restarted agent: nothing in memory, the record on the object
    patch = guard.check("chat-abc.g1.member-a", live)
    assert patch is not None
    assert patch["spec"]["template"]["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.9"
    assert patch["spec"]["template"]["spec"]["nodeSelector"] == {GPU_PRODUCT_LABEL: H100}


def test_a_record_edited_while_the_agent_runs_is_drift_too() -> None:
    rendered = made()
    guard = DriftGuard()
    guard.launched("p", rendered)
    live = stored(rendered)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/image:1"
    forged = json.loads(live["metadata"]["annotations"][RECORD_ANNOTATION])
    forged["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/image:1"
    live["metadata"]["annotations"][RECORD_ANNOTATION] = json.dumps(forged)
    patch = guard.check("p", live)
    assert patch is not None
    assert patch["metadata"]["annotations"] == {RECORD_ANNOTATION: rendered["metadata"]["annotations"][
        RECORD_ANNOTATION]}
    assert patch["spec"]["template"]["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.9"


def test_a_resize_by_the_agent_updates_the_record_so_a_restarted_agent_keeps_the_new_count() -> None:
    rendered = made()
    guard = DriftGuard()
    guard.launched("p", rendered)
    patch = guard.resized("p", rendered, {"metadata": {"annotations": {REPLICAS_ANNOTATION: "1"}},
                                          "spec": {"replicas": 1}})
    live = stored(rendered)
    live["spec"]["replicas"] = 1
    live["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    assert guard.check("p", live) is None
    assert DriftGuard().check("p", live) is None  # restarted: the record says 1 too
    assert recorded(live)["spec"]["replicas"] == 1  # type: ignore[index]


def test_an_object_changed_back_again_and_again_is_given_up_once_at_error(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    guard = DriftGuard(clock=lambda: now[0])
    rendered = made()
    guard.launched("p", rendered)
    scaled = stored(rendered)
    scaled["spec"]["replicas"] = 5  # a member's HPA writes it back after every revert
    with caplog.at_level(logging.WARNING, logger="federator.agent.kube"):
        patches = []
        for _ in range(8):
            now[0] += 10
            patches.append(guard.check("p", scaled))
    assert [p is not None for p in patches] == [True] * 5 + [False] * 3
    assert [r.levelname for r in caplog.records] == ["WARNING"] * 5 + ["ERROR"]
    assert "stops reverting it" in caplog.records[-1].getMessage()
    assert "spec.replicas: 2 -> 5" in caplog.records[0].getMessage()


def test_the_budget_is_per_window() -> None:
    now = [0.0]
    budget = RevertBudget(max_reverts=2, window=60, clock=lambda: now[0])
    assert [budget.take("p"), budget.take("p")] == [True, True]
    now[0] = 61
    assert [budget.take("p"), budget.take("p")] == [True, True]  # the first two are out of the window
    assert budget.take("p") is False and budget.take("p") is None


def test_an_unreadable_record_is_said_once_and_only_the_replicas_are_kept(caplog: pytest.LogCaptureFixture) -> None:
    live = stored(made())
    live["metadata"]["annotations"][RECORD_ANNOTATION] = "{not json"
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/image:1"
    guard = DriftGuard()
    with caplog.at_level(logging.WARNING, logger="federator.agent.kube"):
        assert guard.check("p", live) is None  # the image: nothing says what it was
        live["spec"]["replicas"] = 7
        assert guard.check("p", live) == {"metadata": {"uid": "uid-1"}, "spec": {"replicas": 2}}
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "is not JSON" in m]) == 1, said
    assert f"annotation {RECORD_ANNOTATION} is not JSON" in said[0] and "only its replicas are kept" in said[0]


def test_a_record_the_job_brought_never_stays_on_the_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """A workload carrying its own `federator.io/rendered` would tell a restarted agent what to revert to (a spec
    without the model pin): the agent's record replaces it, and an object too big for one keeps none."""
    manifest = build_workload(PLACEMENT, SERVE, namespace="w")
    forged = {"spec": {"replicas": 9}, "labels": {}, "annotations": {}}
    manifest["metadata"]["annotations"][RECORD_ANNOTATION] = json.dumps(forged)
    assert recorded(record(manifest)) == baseline(record(manifest))
    assert recorded(record(manifest))["spec"]["replicas"] == 2  # type: ignore[index]
    monkeypatch.setattr("federator.backends.kube.drift.RECORD_LIMIT", 10)
    assert RECORD_ANNOTATION not in record(manifest)["metadata"]["annotations"]
