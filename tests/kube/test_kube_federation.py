"""kubectl in the host cluster, Jobs in real member clusters: the Kubernetes path end to end."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_support import CRDS, EXAMPLES_K8S, JOBS_NAMESPACE, REGIONS, WORKLOADS, Kube, PhaseWatch
from support import eventually, federator_cli

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

H100 = "NVIDIA-H100-80GB-HBM3"
DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"  # kwok: how long a Job's pod runs


@pytest.fixture
def phases(kube: Kube) -> Iterator[PhaseWatch]:
    watch = PhaseWatch(kube.tb, JOBS_NAMESPACE)
    try:
        yield watch
    finally:
        watch.stop()


def test_kubectl_apply_runs_the_gang_as_a_job_on_gpu_nodes_of_one_member(kube: Kube, phases: PhaseWatch) -> None:
    kube.kubectl("host", "apply", "-f", str(EXAMPLES_K8S / "training.yaml"))
    try:
        eventually(lambda: kube.phase("llm-finetune") == "Succeeded", timeout=120,
                   what=lambda: f"llm-finetune Succeeded\n{kube.logs()}")
        eventually(lambda: phases.of("llm-finetune")[-1:] == ["Succeeded"], timeout=30, what="the watch to catch up")
        assert phases.of("llm-finetune") == ["Pending", "Placed", "Running", "Succeeded"]

        status = kube.fj("llm-finetune")["status"]  # type: ignore[index]
        assert status["cluster"] == "member-a"  # the only member with H100s
        (job,) = [j for j in kube.member_jobs("member-a")
                  if j["metadata"]["annotations"]["federator.io/placement-id"] == status["placementId"]]
        spec = job["spec"]
        assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 2, 2)
        pod_spec = spec["template"]["spec"]
        assert pod_spec["nodeSelector"]["nvidia.com/gpu.product"] == H100
        assert pod_spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert job["metadata"]["labels"]["federator.io/placement-id"] == status["placementId"]

        pods = kube.json("member-a", "get", "pods", "-n", WORKLOADS, "-l",
                         f"federator.io/placement-id={status['placementId']}")["items"]
        assert len(pods) == 2
        kwok_nodes = {n["metadata"]["name"] for n in kube.json("member-a", "get", "nodes")["items"]
                      if n["metadata"]["annotations"].get("kwok.x-k8s.io/node") == "fake"}
        assert {p["spec"]["nodeName"] for p in pods} == {"member-a-h100-0", "member-a-h100-1"} <= kwok_nodes
        assert {p["status"]["phase"] for p in pods} == {"Succeeded"}
        _assert_rendezvous(kube, job, pods)

        table = kube.kubectl("host", "get", "fj", "llm-finetune").stdout.splitlines()
        assert table[0].split() == ["NAME", "QUEUE", "PHASE", "HELD", "CLUSTER", "PLACED", "ACCELERATORS", "RESTARTS",
                                    "AGE"]
        # HELD is empty for a job never held (kubectl prints it blank or <none>); PLACED 0: its placements ended;
        # RESTARTS 0: never placed again
        assert [c for c in table[1].split() if c != "<none>"][:7] == \
            ["llm-finetune", "research", "Succeeded", "member-a", "0", "16", "0"]

        # The job is done, but deleting its FederatedJob still removes what it left in the member.
        kube.kubectl("host", "delete", "-f", str(EXAMPLES_K8S / "training.yaml"), "--timeout=60s")
        selector = f"federator.io/placement-id={status['placementId']}"
        eventually(lambda: not kube.json("member-a", "get", "jobs,services", "-n", WORKLOADS, "-l", selector)["items"],
                   timeout=60, what="the finished Job and its Service deleted with the FederatedJob")
    finally:
        kube.kubectl("host", "delete", "-f", str(EXAMPLES_K8S / "training.yaml"), "--wait=false", check=False)


def _assert_rendezvous(kube: Kube, job: dict[str, Any], pods: list[dict[str, Any]]) -> None:
    """The gang's pods find each other: stable DNS names through a headless Service owned by the Job,
    and the environment torchrun reads, all read back from the member cluster."""
    name = job["metadata"]["name"]
    svc = kube.json("member-a", "get", "service", name, "-n", WORKLOADS)
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    (owner,) = svc["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", name, job["metadata"]["uid"])
    by_index = {int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]): p for p in pods}
    assert sorted(by_index) == [0, 1]
    for index, pod in by_index.items():
        assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == (f"{name}-{index}", name)
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}
        assert env["MASTER_ADDR"] == f"{name}-0.{name}" and env["MASTER_PORT"] == "29500"
        assert env["WORLD_SIZE"] == env["NNODES"] == "2"
        assert env["NODE_RANK"] == {"fieldRef": {"apiVersion": "v1", "fieldPath":
                                                 "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
        assert env["FEDERATOR_PLACEMENT_ID"] == job["metadata"]["annotations"]["federator.io/placement-id"]
        # torchrun's own (PET_<FLAG>): the replica's 8 accelerators, the same rendezvous (pretraining QA P2)
        assert (env["PET_NPROC_PER_NODE"], env["PET_NNODES"], env["PET_MASTER_ADDR"], env["PET_NODE_RANK"]) == \
            ("8", "2", env["MASTER_ADDR"], env["NODE_RANK"])
        assert pod["spec"]["containers"][0]["command"][:2] == ["torchrun", "--nnodes=$(NNODES)"]


def _long_job(name: str, *, replicas: int = 1, gpus: int = 8, models: list[str] | None = None,
              kind: str = "training") -> str:
    doc: dict[str, Any] = {
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": kind, "replicas": replicas, "resources": {"nvidia.com/gpu": gpus, "cpu": "2"},
                 "acceleratorModels": models or ["H100"],
                 "template": {"metadata": {"annotations": {DELAY: "600s"}}}},
    }
    return yaml.safe_dump(doc)


def test_a_gang_named_with_a_leading_digit_gets_its_rendezvous_service_and_runs(kube: Kube) -> None:
    """A Service name starts with a letter; the gang's took the Job's name, so "70b-sft" had it refused."""
    kube.kubectl("host", "apply", "-f", "-", input=_long_job("70b-sft", replicas=2, gpus=1))
    try:
        eventually(lambda: kube.phase("70b-sft") == "Running", timeout=120,
                   what=lambda: f"70b-sft Running\n{kube.logs()}")
        pid = kube.fj("70b-sft")["status"]["placementId"]  # type: ignore[index]
        services = kube.json("member-a", "get", "services", "-n", WORKLOADS, "-l",
                             f"federator.io/placement-id={pid}")["items"]
        assert len(services) == 1 and services[0]["metadata"]["name"][0].isalpha()
    finally:
        kube.kubectl("host", "delete", "fj", "70b-sft", "--timeout=60s", check=False)


def test_the_start_line_says_the_jobs_come_from_the_host_cluster_not_a_db_file(kube: Kube) -> None:
    """Kubernetes mode keeps its jobs in FederatedJob status; the start line named the unused --db file."""
    log = kube.fed.server.log.read_text()  # type: ignore[union-attr]
    line = next(x for x in log.splitlines() if "federator serving gRPC" in x)
    assert "jobs loaded from FederatedJob status in https://127.0.0.1:" in line
    assert "federator.db" not in line


def test_deleting_the_federated_job_deletes_the_member_job(kube: Kube) -> None:
    kube.kubectl("host", "apply", "-f", "-", input=_long_job("to-delete", replicas=2, gpus=1))
    eventually(lambda: kube.phase("to-delete") == "Running", timeout=120,
               what=lambda: f"to-delete Running\n{kube.logs()}")
    fj = kube.fj("to-delete")
    assert fj is not None and "federator.io/placements" in fj["metadata"]["finalizers"]
    pid = fj["status"]["placementId"]

    def member_job() -> list[dict[str, Any]]:
        return [j for j in kube.member_jobs("member-a")
                if j["metadata"]["annotations"]["federator.io/placement-id"] == pid]

    (job,) = member_job()
    name = job["metadata"]["name"]
    services = kube.json("member-a", "get", "services", "-n", WORKLOADS, "-l", f"federator.io/placement-id={pid}")
    assert [s["metadata"]["name"] for s in services["items"]] == [name]  # the gang's rendezvous Service
    kube.kubectl("host", "delete", "fj", "to-delete", "--timeout=60s")  # waits for the finalizer
    assert kube.fj("to-delete") is None
    eventually(lambda: not member_job(), timeout=60, what=f"the member Job of {pid} to be deleted")
    eventually(lambda: not kube.json("member-a", "get", "pods", "-n", WORKLOADS, "-l",
                                     f"federator.io/placement-id={pid}")["items"],
               timeout=60, what="its pods to go")
    eventually(lambda: not kube.json("member-a", "get", "services", "-n", WORKLOADS, "-l",
                                     f"federator.io/placement-id={pid}")["items"],
               timeout=60, what="its rendezvous Service to go")
    # The gRPC view of the same store agrees with kubectl: the job went with its object (it was listed, Cancelled,
    # until the federator restarted).
    listed = federator_cli("get", "jobs", "-o", "json", *kube.fed.client_args())
    assert listed.returncode == 0, listed.stderr
    assert fj["status"]["jobId"] not in listed.stdout, listed.stdout


@pytest.mark.parametrize(("spec", "error"), [
    pytest.param({"kind": "training", "replicas": 0, "resources": {"cpu": "1"}}, "spec.replicas", id="replicas-0"),
    pytest.param({"kind": "batch", "resources": {"cpu": "1"}}, "spec.kind", id="unknown-kind"),
    pytest.param({"kind": "training", "resources": {"cpu": "lots"}}, "spec.resources.cpu", id="bad-quantity"),
    pytest.param({"kind": "training", "resources": {}}, "spec.resources", id="asks-for-nothing"),
    # outside QA G3: passed `kubectl apply --dry-run=server`, then Failed
    pytest.param({"kind": "training", "resources": {"nvidia.com/gpu": 0, "cpu": "0.0", "memory": "0Gi"}},
                 "spec.resources: asks for nothing", id="zero-ask"),
    pytest.param({"kind": "training", "resources": {"cpu": "1"}, "colour": "red"}, "colour", id="unknown-field"),
    pytest.param({"kind": "training", "resources": {"nvidia.com/gpu": 1}, "acceleratorModels": ["H100"],
                  "gpuModels": ["H100"]}, "gpuModels is the old name of acceleratorModels", id="both-model-names"),
    pytest.param({"kind": "inference", "replicas": 2, "resources": {"cpu": "1"}, "regions": {"minRegions": 3}},
                 "spec.regions.minRegions: is more than spec.replicas", id="min-regions-over-replicas"),
    pytest.param({"kind": "training", "replicas": 4, "resources": {"cpu": "1"}, "regions": {"minRegions": 2}},
                 "spec.regions.minRegions: applies to inference jobs only", id="min-regions-of-a-gang"),
    pytest.param({"kind": "inference", "resources": {"cpu": "1"}, "regions": {"maxLatencyMs": 20}},
                 "maxLatencyMs needs spec.regions.user", id="latency-without-user"),
    pytest.param({"kind": "training", "resources": {"nvidia.com/gpu": 1, "amd.com/gpu": 1}},
                 "a replica asks for one kind of accelerator", id="two-accelerator-resources"),
    pytest.param({"kind": "training", "replicas": 2, "workload": {"apiVersion": "batch/v1", "kind": "Job",
                                                                   "metadata": {"name": "w"}, "spec": {}}},
                 "derived from spec.workload", id="replicas-beside-workload"),
])
def test_an_invalid_spec_is_refused_by_the_api_server(kube: Kube, spec: dict[str, Any], error: str) -> None:
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
           "metadata": {"name": "invalid", "namespace": JOBS_NAMESPACE}, "spec": spec}
    proc = kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert proc.returncode != 0
    assert error in proc.stderr
    assert kube.fj("invalid") is None


def test_a_member_cluster_with_a_region_no_agent_could_say_is_refused_by_the_api_server(kube: Kube) -> None:
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": "by-hand"},
           "spec": {"region": "West_1"}}
    proc = kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
    assert proc.returncode != 0
    assert "spec.region" in proc.stderr


@pytest.mark.parametrize("key", ["acceleratorModels", "gpuModels"])  # gpuModels: the old name, still read
def test_a_spec_the_schema_allows_but_the_federator_refuses_fails_naming_the_field(kube: Kube, key: str) -> None:
    name = f"models-without-accelerators-{key.lower()}"
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
           "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
           "spec": {"kind": "training", "resources": {"cpu": "1"}, key: ["H100"]}}
    kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(doc))
    try:
        eventually(lambda: kube.phase(name) == "Failed", timeout=60, what="Failed")
        assert f"spec.{key}: is set but" in kube.fj(name)["status"]["message"]  # type: ignore[index]
    finally:
        kube.kubectl("host", "delete", "fj", name, "--timeout=60s", check=False)


def test_a_refused_spec_corrected_over_the_object_is_judged_again(kube: Kube) -> None:
    """Outside QA G3: a GitOps tool fixes a refused job by applying the corrected spec over it. The CRD lets the
    spec of a job that never ran change, the federator judges the new generation and admits it; from then on the
    spec is immutable again."""
    name = "corrected"
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
           "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
           "spec": {"kind": "training", "resources": {"cpu": "1"}, "acceleratorModels": ["H100"]}}
    kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(doc))
    try:
        eventually(lambda: kube.phase(name) == "Failed", timeout=60, what="Failed")
        del doc["spec"]["acceleratorModels"]  # type: ignore[attr-defined]
        kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(doc))
        eventually(lambda: kube.phase(name) in ("Placed", "Running", "Succeeded"), timeout=120,
                   what=lambda: f"the corrected spec admitted\n{kube.logs()}")
        fj = kube.fj(name)
        assert fj["status"]["jobId"] and fj["status"]["observedGeneration"] == 2  # type: ignore[index]
        doc["spec"]["priority"] = 5  # type: ignore[index]
        proc = kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
        assert proc.returncode != 0 and "spec.priority: is immutable" in proc.stderr, proc.stderr
    finally:
        kube.kubectl("host", "delete", "fj", name, "--timeout=60s", check=False)


def test_a_spec_is_immutable_naming_the_field_and_a_default_written_out_is_no_change(kube: Kube) -> None:
    """Outside QA G6: the refusal names the field changed (a GitOps sync error says which line to revert), and
    `preemptible: false` written out, the default, is no change."""
    kube.kubectl("host", "apply", "-f", "-", input=_long_job("immutable"))
    try:
        proc = kube.kubectl("host", "apply", "-f", "-", input=_long_job("immutable", models=["A100"]), check=False)
        assert proc.returncode != 0
        assert "spec.acceleratorModels: is immutable; delete the FederatedJob and create it again" in proc.stderr
        doc = yaml.safe_load(_long_job("immutable"))
        doc["spec"].update(preemptible=False, priority=0, queue="default")
        kube.kubectl("host", "apply", "--server-side", "--field-manager=gitops", "-f", "-", input=yaml.safe_dump(doc))
    finally:
        kube.kubectl("host", "delete", "fj", "immutable", "--timeout=60s", check=False)


def _expected_free(kube: Kube, member: str) -> dict[str, tuple[int, int]]:
    """GPU model -> (total, free), computed here from the member's Nodes and Pods, independently."""
    nodes = kube.json(member, "get", "nodes")["items"]
    pods = kube.json(member, "get", "pods", "-A", "--field-selector",
                     "status.phase!=Succeeded,status.phase!=Failed")["items"]
    used: dict[str, int] = {}
    for p in pods:
        node = p["spec"].get("nodeName")
        for c in p["spec"]["containers"]:
            gpus = int((c.get("resources", {}).get("requests") or {}).get("nvidia.com/gpu", 0))
            if node:
                used[node] = used.get(node, 0) + gpus
    out: dict[str, tuple[int, int]] = {}
    for n in nodes:
        model = n["metadata"]["labels"]["nvidia.com/gpu.product"]
        alloc = int(n["status"]["allocatable"]["nvidia.com/gpu"])
        total, free = out.get(model, (0, 0))
        out[model] = (total + alloc, free + alloc - used.get(n["metadata"]["name"], 0))
    return out


def _reported(kube: Kube, member: str) -> dict[str, tuple[int, int]]:
    mc = kube.json("host", "get", "membercluster", member)
    return {g["model"]: (g["total"], g["free"]) for g in (mc.get("status") or {}).get("accelerators") or []}


def test_reported_capacity_matches_the_member_clusters_nodes_and_pods(kube: Kube) -> None:
    # Hold GPUs with work that keeps running: one H100 gang on member-a, one inference service on member-b.
    kube.kubectl("host", "apply", "-f", "-", input=_long_job("hold-h100", replicas=1, gpus=8))
    kube.kubectl("host", "apply", "-f", "-",
                 input=_long_job("hold-l40s", replicas=2, gpus=1, models=["L40S"], kind="inference"))
    try:
        for name in ("hold-h100", "hold-l40s"):
            eventually(lambda n=name: kube.phase(n) == "Running", timeout=120,
                       what=lambda n=name: f"{n} Running\n{kube.logs()}")
        # A Job reads Running while its pod waits to be bound (CI, under load: both sides then said 16 of 16 H100
        # free), so wait for the pods to hold their GPUs before comparing the two views.
        eventually(lambda: _expected_free(kube, "member-a").get(H100) == (16, 8)
                   and _expected_free(kube, "member-b").get("NVIDIA-L40S") == (8, 6), timeout=120,
                   what=lambda: f"the holding pods bound ({_expected_free(kube, 'member-a')}, "
                                f"{_expected_free(kube, 'member-b')})\n{kube.logs()}")
        for member in kube.tb.members:
            eventually(lambda m=member: _reported(kube, m) == _expected_free(kube, m), timeout=60,
                       what=lambda m=member: f"{m}'s reported GPUs to match its nodes and pods "
                                             f"({_reported(kube, m)} vs {_expected_free(kube, m)})")
        a, b = _reported(kube, "member-a"), _reported(kube, "member-b")
        assert a[H100] == (16, 8)
        assert b["NVIDIA-L40S"] == (8, 6)
    finally:
        kube.kubectl("host", "delete", "fj", "hold-h100", "hold-l40s", "--timeout=60s", check=False)
    for member in kube.tb.members:
        eventually(lambda m=member: all(free == total for total, free in _reported(kube, m).values()), timeout=60,
                   what=f"{member}'s GPUs free again after the deletes")


@pytest.mark.parametrize(("cluster", "account", "verb", "resource", "namespace", "allowed"), [
    pytest.param("member-a", "federator-agent", "create", "jobs", WORKLOADS, True, id="agent-creates-jobs"),
    pytest.param("member-a", "federator-agent", "create", "jobs", "default", False, id="agent-not-elsewhere"),
    pytest.param("member-a", "federator-agent", "delete", "pods", WORKLOADS, False, id="agent-no-pod-writes"),
    pytest.param("member-a", "federator-agent", "get", "secrets", WORKLOADS, False, id="agent-no-secrets"),
    pytest.param("member-a", "federator-agent", "watch", "events", WORKLOADS, True, id="agent-watches-events"),
    pytest.param("member-a", "federator-agent", "delete", "events", WORKLOADS, False, id="agent-no-event-deletes"),
    # `federator logs`: the tail of its own pods' output, in the workload namespace only (backends/kube/pod_logs.py)
    pytest.param("member-a", "federator-agent", "get", "pods/log", WORKLOADS, True, id="agent-reads-pod-logs"),
    pytest.param("member-a", "federator-agent", "get", "pods/log", "kube-system", False, id="agent-no-logs-elsewhere"),
    pytest.param("host", "federator", "patch", "federatedjobs.federator.io/status", "team-x", True, id="fed-status"),
    # It deletes a finished FederatedJob past its spec.ttlSecondsAfterFinished (backends/kube/finished_ttl.py), as
    # batch/v1's TTL controller deletes a Job; only those (the object's uid a precondition).
    pytest.param("host", "federator", "delete", "federatedjobs.federator.io", "team-x", True,
                 id="fed-deletes-fjs-past-their-ttl"),
    pytest.param("host", "federator", "deletecollection", "federatedjobs.federator.io", "team-x", False,
                 id="fed-no-fj-collection-deletes"),
    pytest.param("host", "federator", "create", "events", "team-x", True, id="fed-events"),
    pytest.param("host", "federator", "delete", "events", "team-x", False, id="fed-no-event-deletes"),
    pytest.param("host", "federator", "patch", "queues.federator.io/status", "default", True, id="fed-queue-status"),
    pytest.param("host", "federator", "update", "federatedjobs.federator.io/status", "team-x", False,
                 id="fed-status-patch-only"),
    # It patches a Queue's finalizer federator.io/queue-in-use (a deleted Queue waits for its unfinished jobs), never
    # replaces one, creates one or deletes one: the Queues are the admin's.
    pytest.param("host", "federator", "patch", "queues.federator.io", "default", True,
                 id="fed-patches-queue-finalizer"),
    pytest.param("host", "federator", "update", "queues.federator.io", "default", False, id="fed-no-queue-updates"),
    pytest.param("host", "federator", "delete", "queues.federator.io", "default", False, id="fed-no-queue-deletes"),
    pytest.param("host", "federator", "list", "memberclusters.federator.io", "default", True, id="fed-lists-mcs"),
    pytest.param("host", "federator", "get", "namespaces", "default", True, id="fed-reads-a-namespace"),
    pytest.param("host", "federator", "update", "namespaces", "default", False, id="fed-no-namespace-writes"),
    # It deletes the MemberCluster of a Lost cluster it forgot (--forget-lost-after, server/leases.py).
    pytest.param("host", "federator", "delete", "memberclusters.federator.io", "default", True,
                 id="fed-deletes-forgotten-mcs"),
    pytest.param("host", "federator", "update", "leases.coordination.k8s.io/federator", "federator-system", True,
                 id="fed-its-lease"),
    pytest.param("host", "federator", "update", "leases.coordination.k8s.io/other", "federator-system", False,
                 id="fed-only-its-lease"),
])
def test_rbac_is_least_privilege(kube: Kube, cluster: str, account: str, verb: str, resource: str, namespace: str,
                                 allowed: bool) -> None:
    """The whole session runs as these service accounts; here is what they may not do."""
    # "kind/status" and "pods/log" are subresources (kubectl would read "/status" as an object's name).
    kind, sub = next(((resource.removesuffix(f"/{s}"), s) for s in ("status", "log") if resource.endswith(f"/{s}")),
                     (resource, ""))
    proc = kube.kubectl(cluster, "auth", "can-i", verb, kind, *([f"--subresource={sub}"] if sub else []),
                        "-n", namespace, f"--as=system:serviceaccount:federator-system:{account}", check=False)
    assert proc.stdout.strip() == ("yes" if allowed else "no")


def test_a_restarted_agent_finds_its_placements_by_label_and_launches_nothing_twice(kube: Kube) -> None:
    kube.kubectl("host", "apply", "-f", "-", input=_long_job("survives-restart"))
    try:
        eventually(lambda: kube.phase("survives-restart") == "Running", timeout=120, what="Running")
        pid = kube.fj("survives-restart")["status"]["placementId"]  # type: ignore[index]
        before = [j["metadata"]["uid"] for j in kube.member_jobs("member-a")
                  if j["metadata"]["annotations"]["federator.io/placement-id"] == pid]
        assert len(before) == 1

        old = kube.fed.agents["member-a"]
        old.stop()
        log_size = old.log.stat().st_size
        handle = kube.workdir / "agent-member-a.kubeconfig"
        new = kube.fed.start_kube_agent("member-a", kubeconfig=handle, region="east")
        eventually(lambda: "connected to" in new.log.read_text()[log_size:], timeout=60, what="the agent back")
        eventually(lambda: kube.json("host", "get", "mc", "member-a")["status"]["state"] == "Ready", timeout=60,
                   what="member-a Ready again")

        after = [j["metadata"]["uid"] for j in kube.member_jobs("member-a")
                 if j["metadata"]["annotations"]["federator.io/placement-id"] == pid]
        assert after == before  # the same Job: re-synced, not relaunched
        status = kube.fj("survives-restart")["status"]  # type: ignore[index]
        assert (status["phase"], status["placementId"]) == ("Running", pid)  # not re-queued elsewhere
    finally:
        kube.kubectl("host", "delete", "fj", "survives-restart", "--timeout=60s", check=False)


def test_a_job_on_a_partitioned_member_says_so_in_its_status_until_the_member_is_ready_again(kube: Kube) -> None:
    """Found on a test bed: a job on a Partitioned member showed `Placed`/`Running` with an empty message until the
    agent came back or the member was Lost, and only `kubectl get mc` said why nothing happened."""
    kube.kubectl("host", "apply", "-f", "-", input=_long_job("waits-for-member"))
    try:
        eventually(lambda: kube.phase("waits-for-member") == "Running", timeout=120, what="Running")
        status = kube.fj("waits-for-member")["status"]  # type: ignore[index]
        member, pid = status["cluster"], status["placementId"]
        assert "Partitioned" not in status.get("message", "")

        old = kube.fed.agents[member]
        old.stop()
        log_size = old.log.stat().st_size
        eventually(lambda: kube.json("host", "get", "mc", member)["status"]["state"] == "Partitioned", timeout=60,
                   what=f"{member} Partitioned")
        message = eventually(lambda: (m := kube.fj("waits-for-member")["status"].get("message", ""))  # type: ignore[index]
                             and "Partitioned" in m and m, timeout=30, what="the job's message names the partition")
        assert message.startswith(f"{member} Partitioned since "), message
        assert "(120 s on), when the job is placed again" in message, message  # the federator's --lost-after
        assert kube.phase("waits-for-member") == "Running"  # it keeps running there meanwhile

        kube.fed.start_kube_agent(member, kubeconfig=kube.workdir / f"agent-{member}.kubeconfig",
                                  region=REGIONS[member])
        eventually(lambda: "connected to" in kube.fed.agents[member].log.read_text()[log_size:], timeout=60,
                   what="the agent back")
        eventually(lambda: kube.json("host", "get", "mc", member)["status"]["state"] == "Ready", timeout=60,
                   what=f"{member} Ready again")
        eventually(lambda: "Partitioned" not in kube.fj("waits-for-member")["status"].get("message", ""),  # type: ignore[index]
                   timeout=60, what="the note gone once the member is Ready")
        status = kube.fj("waits-for-member")["status"]  # type: ignore[index]
        assert (status["phase"], status["placementId"]) == ("Running", pid)
    finally:
        kube.kubectl("host", "delete", "fj", "waits-for-member", "--timeout=60s", check=False)


def test_a_job_submitted_through_the_grpc_api_gets_a_federated_job(kube: Kube, tmp_path: Path) -> None:
    """In Kubernetes mode every job is a FederatedJob, however it was submitted: kubectl shows them all."""
    job_file = tmp_path / "job.yaml"
    job_file.write_text(_long_job("from-grpc"))
    proc = subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(job_file),
                           *kube.fed.client_args()], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    try:
        eventually(lambda: kube.phase("from-grpc") == "Running", timeout=120, what=lambda: f"Running\n{kube.logs()}")
        fj = kube.fj("from-grpc")
        assert fj is not None
        assert "federator.io/placements" in fj["metadata"]["finalizers"]
        assert fj["spec"]["acceleratorModels"] == ["H100"] and "gpuModels" not in fj["spec"]
        assert fj["status"]["jobId"].startswith("from-grpc-")
        assert "FederatedJob default/from-grpc submitted" not in kube.fed.server.log.read_text()  # type: ignore[union-attr]
    finally:
        kube.kubectl("host", "delete", "fj", "from-grpc", "--timeout=60s", check=False)
    eventually(lambda: not [j for j in kube.member_jobs("member-a")
                            if j["metadata"]["annotations"]["federator.io/job-id"].startswith("from-grpc-")],
               timeout=60, what="its member Job deleted")


def _old_federated_job_crd() -> str:
    """The FederatedJob CRD as it was before spec.acceleratorModels: gpuModels the only name of the field."""
    crd = yaml.safe_load((CRDS / "federatedjobs.yaml").read_text())
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = root["properties"]["spec"]
    del spec["properties"]["acceleratorModels"]
    for schema in (spec, root):  # the spec's own rules, and the immutability rules at the root (they read status)
        schema["x-kubernetes-validations"] = [r for r in schema.get("x-kubernetes-validations", [])
                                              if "acceleratorModels" not in r["rule"]]
    return yaml.safe_dump(crd)


def _knows_accelerator_models(kube: Kube) -> bool:
    return kube.kubectl("host", "create", "--dry-run=server", "--validate=strict", "-f", "-",
                        input=_long_job("crd-probe"), check=False).returncode == 0


def test_on_a_crd_from_before_acceleratormodels_a_grpc_jobs_models_are_kept_by_their_old_name(
        kube: Kube, tmp_path: Path) -> None:
    """helm upgrade never upgrades crds/, and the API server prunes a field its CRD does not name from the
    FederatedJob the federator creates for a gRPC job: the job would be rebuilt without its models after
    a restart. The federator creates strictly, and on that error writes them by their old name."""
    kube.kubectl("host", "apply", "-f", "-", input=_old_federated_job_crd())
    try:
        eventually(lambda: not _knows_accelerator_models(kube), what="the API server to serve the old CRD")
        job_file = tmp_path / "job.yaml"
        job_file.write_text(_long_job("old-crd", gpus=4, models=["A100"]))
        proc = subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(job_file),
                               *kube.fed.client_args()], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        fj = eventually(lambda: kube.fj("old-crd"), what="its FederatedJob")
        assert fj["spec"]["gpuModels"] == ["A100"] and "acceleratorModels" not in fj["spec"]
        eventually(lambda: kube.phase("old-crd") == "Running", timeout=120,
                   what=lambda: f"old-crd Running\n{kube.logs()}")
        assert "does not know spec.acceleratorModels" in kube.fed.server.log.read_text()  # type: ignore[union-attr]
    finally:
        kube.kubectl("host", "delete", "fj", "old-crd", "-n", JOBS_NAMESPACE, "--timeout=60s", check=False)
        kube.kubectl("host", "apply", "-f", str(CRDS / "federatedjobs.yaml"))
        eventually(lambda: _knows_accelerator_models(kube), what="the API server to serve the current CRD again")
