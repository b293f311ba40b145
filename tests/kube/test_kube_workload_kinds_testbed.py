"""Workload kinds users bring (spec.workload), on real member clusters, through kubectl in the host.

The CRDs come from each controller's own Go module (`workload_crds`), so the
API server checks every object the agent creates against the controller's
real schema. Where a kind's controller does not run here, the object is
created and placed but nothing runs its pods: those tests stop at Placed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from federator.backends.kube.workloads import RenderOptions, adapter_for, build_workload, needs
from federator.model import JobId, JobSpec, Placement, PlacementId, Resources
from federator.security import isolation
from federator.security.podsecurity import PodSecurity, check_object

from kube_support import JOBS_NAMESPACE, WORKLOADS, Kube
from support import eventually
from workload_crds import MODULES, crd_file
from workload_objects import ALL, fresh

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

A100 = "NVIDIA-A100-SXM4-80GB"


def install_crds(kube: Kube, member: str, kinds: list[str]) -> None:
    for kind in kinds:
        path = crd_file(kind)
        kube.kubectl(member, "apply", "--server-side", "-f", str(path))
        name = yaml.safe_load(path.read_text())["metadata"]["name"]

        def established(name: str = name) -> bool:
            conditions = (kube.json(member, "get", "crd", name).get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        eventually(established, timeout=60, what=f"CRD {name} Established on {member}")


def fj(name: str, workload: dict[str, Any], **spec: Any) -> str:
    return yaml.safe_dump({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                           "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
                           "spec": {"workload": workload, **spec}})


def member_objects(kube: Kube, member: str, resource: str, pid: str) -> list[dict[str, Any]]:
    items = kube.json(member, "get", resource, "-n", WORKLOADS, "-l", "app.kubernetes.io/managed-by=federator")
    return [o for o in items["items"] if o["metadata"]["annotations"]["federator.io/placement-id"] == pid]


def mc_kinds(kube: Kube, member: str) -> str:
    return str((kube.json("host", "get", "mc", member).get("status") or {}).get("workloadKinds", ""))


def test_a_jobset_waits_until_a_member_serves_jobsets_then_runs_there(kube: Kube) -> None:
    if any("JobSet" in mc_kinds(kube, m) for m in kube.tb.members):
        pytest.skip("a member serves JobSets already (the JobSet controller runs on the test bed)")
    kube.kubectl("host", "apply", "-f", "-", input=fj("pretrain", fresh("JobSet"), acceleratorModels=["A100"]))
    try:
        def reason() -> dict[str, Any]:
            return ((kube.fj("pretrain") or {}).get("status") or {}).get("pendingReason") or {}

        try:
            eventually(lambda: reason().get("code") == "WorkloadKindUnsupported", timeout=60, what="")
        except AssertionError:
            raise AssertionError(f"pretrain is not pending for its kind: {kube.fj('pretrain')}\n{kube.logs()}") \
                from None
        assert "does not run JobSet.jobset.x-k8s.io" in reason()["message"]
        wide = kube.kubectl("host", "get", "fj", "pretrain", "-o", "wide").stdout
        assert "WorkloadKindUnsupported" in wide and "JobSet" in wide, wide

        install_crds(kube, "member-b", ["JobSet"])  # the member gains the kind: its agent finds it
        eventually(lambda: "JobSet" in mc_kinds(kube, "member-b"), timeout=60, what="member-b to advertise JobSet")
        assert "JobSet" in kube.kubectl("host", "get", "mc", "member-b", "-o", "wide").stdout
        eventually(lambda: kube.phase("pretrain") == "Placed", timeout=60,
                   what=lambda: f"pretrain Placed\n{kube.logs()}")
        status = kube.fj("pretrain")["status"]  # type: ignore[index]
        assert (status["cluster"], status["accelerators"]) == ("member-b", "16")  # 2 workers x 8; the driver is CPU
        # Placed is recorded when the federator decides; the agent creates the JobSet just after.
        (js,) = eventually(lambda: member_objects(kube, "member-b", "jobsets.jobset.x-k8s.io", status["placementId"]),
                           timeout=60, what=lambda: f"pretrain's JobSet on member-b\n{kube.logs()}")
        driver, workers = (r["template"]["spec"]["template"] for r in js["spec"]["replicatedJobs"])
        assert workers["spec"]["nodeSelector"]["nvidia.com/gpu.product"] == A100
        assert "nodeSelector" not in driver["spec"]  # a CPU pod set goes anywhere
        assert workers["metadata"]["annotations"]["federator.io/placement-id"] == status["placementId"]

        kube.kubectl("host", "delete", "fj", "pretrain", "--timeout=60s")
        eventually(lambda: not member_objects(kube, "member-b", "jobsets.jobset.x-k8s.io", status["placementId"]),
                   timeout=60, what="the member's JobSet to be deleted with the FederatedJob")
    finally:
        kube.kubectl("host", "delete", "fj", "pretrain", "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def every_crd(kube: Kube) -> None:
    for member in kube.tb.members:
        install_crds(kube, member, list(MODULES))
    for member in kube.tb.members:
        eventually(lambda m=member: all(k in mc_kinds(kube, m) for k in MODULES), timeout=60,
                   what=f"{member} to advertise every kind")


@pytest.mark.parametrize("kind", sorted(ALL))
def test_each_kinds_rendered_object_passes_its_real_schema(kube: Kube, every_crd: None, kind: str) -> None:
    """What the agent would create for a placement, as the member's API server (with the controller's CRD)
    validates it: server-side dry run."""
    obj = fresh(kind)
    adapter = adapter_for(obj)
    replicas, per = needs(adapter.pod_sets(obj))
    spec = JobSpec(name="x", kind=adapter.job_kind, replicas=replicas, resources=per, workload_json=json.dumps(obj),
                   group_size=adapter.group_size(obj))
    placement = Placement(PlacementId("schema-1.g1.member-b"), JobId("schema-1"), "member-b", "west", replicas, A100,
                          1)
    out = build_workload(placement, spec, namespace=WORKLOADS,
                         options=RenderOptions(labels={"kueue.x-k8s.io/queue-name": "gpu"}))
    got = kube.kubectl("member-b", "create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(out))
    created = json.loads(got.stdout)
    assert created["metadata"]["labels"]["federator.io/placement-id"] == "schema-1.g1.member-b"
    assert created["spec"] != {}  # nothing pruned away wholesale
    assert Resources() != per


def test_a_malformed_object_is_refused_at_submit_with_the_field_path(kube: Kube) -> None:
    bad = fresh("JobSet")
    bad["spec"]["replicatedJobs"][1]["template"]["spec"]["template"]["spec"]["containers"] = []
    got = kube.kubectl("host", "apply", "-f", "-", input=fj("bad-jobset", bad), check=False)
    try:
        def said() -> str:
            status = (kube.fj("bad-jobset") or {}).get("status") or {}
            return f"{status.get('phase')}: {status.get('message')}"

        eventually(lambda: "Failed" in said(), timeout=60, what=f"bad-jobset refused\n{got.stderr}")
        assert "spec.workload.spec.replicatedJobs[1].template.spec.template.spec.containers" in said()
    finally:
        kube.kubectl("host", "delete", "fj", "bad-jobset", "--wait=false", "--ignore-not-found", check=False)


def test_an_lws_inference_job_spreads_its_groups(kube: Kube, every_crd: None) -> None:
    lws = fresh("LeaderWorkerSet")
    lws["spec"]["replicas"] = 2
    lws["spec"]["leaderWorkerTemplate"]["size"] = 2  # a group: a leader and a worker, 1 GPU each
    for t in ("leaderTemplate", "workerTemplate"):
        res = lws["spec"]["leaderWorkerTemplate"][t]["spec"]["containers"][0]["resources"]
        res["requests"]["nvidia.com/gpu"] = res["limits"]["nvidia.com/gpu"] = 1
    kube.kubectl("host", "apply", "-f", "-", input=fj("llm-serve", lws, regions={"minRegions": 2}))
    try:
        eventually(lambda: kube.phase("llm-serve") == "Placed", timeout=60,
                   what=lambda: f"llm-serve Placed\n{kube.logs()}")
        status = kube.fj("llm-serve")["status"]  # type: ignore[index]
        by_member = {p["cluster"]: p for p in status["placements"]}
        assert sorted(by_member) == ["member-a", "member-b"]  # one group in each region
        for member, p in by_member.items():
            assert p["replicas"] == 2  # one group of two pods
            (obj,) = member_objects(kube, member, "leaderworkersets.leaderworkerset.x-k8s.io", p["placementId"])
            assert obj["spec"]["replicas"] == 1 and obj["spec"]["leaderWorkerTemplate"]["size"] == 2
        kube.kubectl("host", "delete", "fj", "llm-serve", "--timeout=60s")
        for member, p in by_member.items():
            eventually(lambda m=member, pid=p["placementId"]: not member_objects(
                kube, m, "leaderworkersets.leaderworkerset.x-k8s.io", pid), timeout=60, what=f"{member}'s LWS gone")
    finally:
        kube.kubectl("host", "delete", "fj", "llm-serve", "--wait=false", "--ignore-not-found", check=False)


def test_the_ray_fields_the_checks_read_are_kuberays_own(kube: Kube, every_crd: None) -> None:
    """The fields the red team sent past both checks (a privileged autoscaler, a LoadBalancer head Service with
    external IPs, an Ingress) are KubeRay's as its CRD has them: the member's API server keeps each (none is
    pruned as unknown), and the checks that now refuse them read them at those paths."""
    obj = fresh("RayJob")
    cluster = obj["spec"]["rayClusterSpec"]
    cluster["enableInTreeAutoscaling"] = True
    cluster["autoscalerOptions"] = {"securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}
    cluster["headGroupSpec"].update(serviceType="LoadBalancer", enableIngress=True,
                                    headService={"spec": {"type": "LoadBalancer", "externalIPs": ["192.0.2.10"]}})
    obj["metadata"]["namespace"] = WORKLOADS
    got = kube.kubectl("member-b", "create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(obj))
    kept = json.loads(got.stdout)["spec"]["rayClusterSpec"]
    assert kept["autoscalerOptions"]["securityContext"]["privileged"] is True
    assert kept["headGroupSpec"]["serviceType"] == "LoadBalancer" and kept["headGroupSpec"]["enableIngress"] is True
    assert kept["headGroupSpec"]["headService"]["spec"]["externalIPs"] == ["192.0.2.10"]
    at = "spec.rayClusterSpec"
    assert {v.field for v in check_object(obj, policy=PodSecurity())} == {
        f"{at}.autoscalerOptions.securityContext.privileged",
        f"{at}.autoscalerOptions.securityContext.capabilities.add[0]", f"{at}.headGroupSpec.serviceType",
        f"{at}.headGroupSpec.headService.spec.type", f"{at}.headGroupSpec.enableIngress"}
    assert [field for field, _ in isolation.problems(obj, "")] == [f"{at}.headGroupSpec.headService.spec.externalIPs"]
