"""The FederatedJob CRD and the job file validator describe the same spec (one shape, one name per field)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.backends.kube.arrays import ARRAY_FIELD
from federator.backends.kube.finished_ttl import FIELD as TTL
from federator.backends.kube.resources import job_status
from federator.backends.kube.unadmitted import DEPENDENCY, QUEUE_NOT_ALLOWED, open_to_change
from federator.backends.kube.workloads.registry import ADAPTERS
from federator.jobfile import OLD_SPEC_NAMES, JobFileError, parse_job
from federator.jobfile_affinity import MAX_SAME_AS
from federator.jobfile_loading import load_job_files
from federator.model import Condition, Job, JobId, JobKind, JobPhase, Placement, PlacementId

from support import EXAMPLES, ROOT

CRDS = ROOT / "deploy" / "helm" / "federator" / "crds"


def _schema(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"{name}.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"])


def _known(spec: dict[str, Any], field: str) -> set[str]:
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "x"}, "spec": spec}
    with pytest.raises(JobFileError) as err:
        parse_job(doc)
    match = re.search(rf"{re.escape(field)}: is not a known field \(known: ([^)]*)\)", str(err.value))
    assert match, str(err.value)
    return set(match.group(1).split(", "))


def test_spec_fields_match_the_job_file() -> None:
    spec = _schema("federatedjobs")["properties"]["spec"]
    known = _known({"kind": "training", "resources": {"cpu": 1}, "zz": 1}, "spec.zz")
    # an old name is read, not listed as known; the TTL is the object's lifetime, not the job's (finished_ttl.py);
    # spec.array makes the object an array of jobs, never a job (backends/kube/arrays.py)
    assert set(spec["properties"]) == known | set(OLD_SPEC_NAMES) | {TTL, ARRAY_FIELD}
    assert set(spec["properties"]["regions"]["properties"]) == _known(
        {"kind": "training", "resources": {"cpu": 1}, "regions": {"zz": 1}}, "spec.regions.zz")
    # any catalog resource (nvidia.com/gpu, huawei.com/Ascend910, ...) is a quantity; the job file names bad ones
    assert "quantity" in str(spec["properties"]["resources"]["additionalProperties"]["pattern"]) or \
        spec["properties"]["resources"]["additionalProperties"]["x-kubernetes-int-or-string"]
    alternative = spec["properties"]["accelerators"]["items"]["properties"]
    assert set(alternative) == _known({"kind": "training", "accelerators": [{"count": 1, "zz": 1}]},
                                      "spec.accelerators[0].zz")


def test_kubectl_get_fj_columns() -> None:
    crd = yaml.safe_load((CRDS / "federatedjobs.yaml").read_text())
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"] if not c.get("priority")]
    # PLACED beside ACCELERATORS (elasticqa63): an elastic gang placed 2/4 holding 16 read as a whole gang of 2
    assert [c.upper() for c in columns] == ["QUEUE", "PHASE", "HELD", "CLUSTER", "PLACED", "ACCELERATORS",
                                            "RESTARTS", "AGE"]
    assert crd["spec"]["names"]["shortNames"] == ["fj"]


def test_an_old_name_is_described_as_such_and_takes_what_the_new_name_takes() -> None:
    """gpuModels, as the Queue's quota.gpus: the same schema as the field it was renamed to, and not both."""
    spec = _schema("federatedjobs")["properties"]["spec"]
    for old, new in OLD_SPEC_NAMES.items():
        assert spec["properties"][old]["description"] == f"the old name of {new}, kept working"
        assert {k: v for k, v in spec["properties"][old].items() if k != "description"} == {
            k: v for k, v in spec["properties"][new].items() if k != "description"}
        rule = next(r for r in spec["x-kubernetes-validations"] if old in r["rule"] and "oldSelf" not in r["rule"])
        assert rule == {"rule": f"!(has(self.{new}) && has(self.{old}))",
                        "message": f"{old} is the old name of {new}; give one of them"}


def test_kubectl_scale_sets_spec_replicas_and_reads_the_replicas_placed() -> None:
    crd = yaml.safe_load((CRDS / "federatedjobs.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    assert version["subresources"]["scale"] == {"specReplicasPath": ".spec.replicas",
                                                "statusReplicasPath": ".status.replicas",
                                                "labelSelectorPath": ".status.selector"}
    status_schema = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert (status_schema["replicas"]["type"], status_schema["selector"]["type"]) == ("integer", "string")
    job = Job(job_id=JobId("j"), spec=parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                                 "metadata": {"name": "x"},
                                                 "spec": {"kind": "inference", "replicas": 5,
                                                          "resources": {"cpu": 1}}}),
              submitted_at=1.0, phase=JobPhase.RUNNING,
              placements=[Placement(PlacementId("j.g1.a"), JobId("j"), "a", "east", 3, "", 1,
                                    phase=JobPhase.RUNNING)])
    status = job_status(job, now=2.0)
    assert status["replicas"] == 3 and status["replicasWaiting"] == 2
    assert status["selector"] == "federator.io/job-id=j"  # the label on the job's pods in every member


def test_kubectl_get_fj_wide_shows_every_placement_of_a_spread_job() -> None:
    """Outside QA (an inference team): the PLACEMENT column was .status.placementId, the first placement's only. A
    printer column's JSONPath cannot join a list, so the federator writes the joined text, the same as `federator
    get jobs -o wide`'s PLACEMENTS, and the column reads it. Every column reads a status field the schema keeps
    (else the API server prunes it and the column is blank), and every status field written is in the schema."""
    crd = yaml.safe_load((CRDS / "federatedjobs.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    job = Job(job_id=JobId("j"), spec=parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                                 "metadata": {"name": "x"},
                                                 "spec": {"kind": "inference", "replicas": 4,
                                                          "resources": {"cpu": 1}}}),
              submitted_at=1.0, phase=JobPhase.RUNNING,
              placements=[Placement(PlacementId(f"j.g1.{c}"), JobId("j"), c, "east", 2, "", 1, phase=JobPhase.RUNNING)
                          for c in ("member-a", "member-b")])
    status = job_status(job, now=2.0)
    status_schema = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert _unknown_keys(status, status_schema) == []
    shown = {}
    for column in version["additionalPrinterColumns"]:
        path = column["jsonPath"].lstrip(".").split(".")
        if path[0] == "status":
            assert path[1] in status_schema["properties"], column
            value: Any = status
            for key in path[1:]:
                value = value.get(key) if isinstance(value, dict) else None
            shown[column["name"]] = value
    assert shown["Placements"] == "member-ax2,member-bx2"


def _transition_rules() -> list[dict[str, str]]:
    """The FederatedJob's rules that compare the object with its old self (at the CRD's root: they read status)."""
    schema = _schema("federatedjobs")
    assert not [r for r in schema["properties"]["spec"]["x-kubernetes-validations"] if "oldSelf" in r["rule"]]
    return [r for r in schema["x-kubernetes-validations"] if "oldSelf" in r["rule"]]


def test_only_an_inference_jobs_replicas_may_change() -> None:
    """One immutability rule per field of the spec but replicas (and the TTL and held, which may change), so a field
    added later is immutable unless someone decides otherwise, and its message starts with the field (outside QA
    G6: "spec is immutable" named none, and a GitOps sync error did not say which line of the change to revert).
    A training job's spec.replicas
    is refused by a rule of its own, saying why (outside QA F16: `kubectl scale` of a gang answered "spec is
    immutable; delete the FederatedJob and create it again", which invited recreating it at another size)."""
    spec = _schema("federatedjobs")["properties"]["spec"]
    *fields, gang = _transition_rules()
    fixed = [f for f in spec["properties"] if f not in ("replicas", TTL, "held")]
    assert [r["rule"] for r in fields] == [
        f"{OPEN} || has(self.spec.{f}) == has(oldSelf.spec.{f}) && (!has(self.spec.{f}) || self.spec.{f} == "
        f"oldSelf.spec.{f})" for f in fixed]
    for field, rule in zip(fixed, fields, strict=True):
        assert rule["message"] == f"spec.{field}: is immutable; delete the FederatedJob and create it again"
    assert gang == {"rule": f"{OPEN} || !has(oldSelf.spec.kind) || oldSelf.spec.kind != 'training' || (has("
                            "self.spec.replicas) ? self.spec.replicas : 1) == (has(oldSelf.spec.replicas) ? "
                            "oldSelf.spec.replicas : 1)",
                    "message": "spec.replicas: a training job's gang size is fixed; only inference jobs may be scaled"}
    # a TTL may change, as a Job's (finished_ttl.py), and spec.held, which holds and releases it (kube/holds.py):
    # no rule names them
    assert not [r for r in _transition_rules() if TTL in r["rule"] or "spec.held" in r["rule"]]


#: The old object never became a job, and the federator refused it, or it waits for its Queue or for a FederatedJob
#: its spec.dependsOn names to be accepted: its spec may change (outside QA G1, G3), as backends/kube/unadmitted.py's
#: open_to_change says. Never an array's, nor into one (new59 N6: an array is no job, so an ended one passed as
#: "refused" and its spec.array could be patched away, the object then run as one job).
OPEN = ("(!has(oldSelf.spec.array) && !has(self.spec.array) && has(oldSelf.status) && !has(oldSelf.status.jobId) && "
        "((has(oldSelf.status.phase) && oldSelf.status.phase "
        "== 'Failed') || (has(oldSelf.status.pendingReason) && has(oldSelf.status.pendingReason.code) && "
        "oldSelf.status.pendingReason.code in ['QueueNotAllowed', 'Dependency'])))")
SERVING = ("((has(oldSelf.spec.kind) && oldSelf.spec.kind == 'inference') || (has(oldSelf.spec.workload) && "
           "oldSelf.spec.workload.kind in ['Deployment', 'StatefulSet', 'LeaderWorkerSet']))")


def test_a_serving_jobs_changed_spec_is_told_the_blue_green_way() -> None:
    """Outside QA F3: `kubectl apply` of an inference job with a new image answered "delete the FederatedJob and
    create it again", which stops every replica in every region first. A serving job (kind inference, or a
    workload of an inference kind, as the agent's adapters judge it) is told to create a second job and delete
    this one once the new one serves; any other job keeps the message it had (its rule's static message)."""
    *fields, _ = _transition_rules()
    for rule in fields:
        field = rule["message"].split(":")[0]
        serving, other = rule["messageExpression"].removeprefix(f"{SERVING} ? ").split(" : ")
        assert other == repr(rule["message"])
        assert serving.startswith(f"'{field}: is immutable (an inference job may change spec.replicas alone")
        assert "create a second FederatedJob beside this one and delete this one once the new one serves" in serving
        assert "accelerators of both" in serving and "Reaching an inference job" in serving
        assert "delete the FederatedJob and create it again" not in serving
    assert {a.kind for a in ADAPTERS if a.job_kind is JobKind.INFERENCE} == {"Deployment", "StatefulSet",
                                                                             "LeaderWorkerSet"}


def test_the_crd_and_the_controller_agree_on_which_objects_are_open_to_change() -> None:
    """The CRD's test of the old object and the controller's (which reopens such an object before it submits it)
    are the same: refused (Failed), waiting for its Queue or for a FederatedJob it names, and never a job."""
    refused = {"phase": "Failed", "message": "spec.resources: asks for nothing"}
    waiting = {"phase": "Pending", "pendingReason": {"code": QUEUE_NOT_ALLOWED, "message": "m"}}
    chained = {"phase": "Pending", "pendingReason": {"code": DEPENDENCY, "message": "m"}}
    assert open_to_change({"status": refused}) and open_to_change({"status": waiting})
    assert open_to_change({"status": chained})
    assert not open_to_change({"status": {**chained, "jobId": "j-1"}})  # a job waiting on others: its spec is fixed
    assert not open_to_change({"status": {**refused, "jobId": "j-1"}})  # a job that failed
    assert not open_to_change({"status": {"phase": "Pending", "jobId": "j-1",
                                          "pendingReason": {"code": "QuotaExceeded"}}})
    assert not open_to_change({"status": {"phase": "Pending"}})  # reopened: being judged
    assert not open_to_change({})
    # an array is no job (no jobId): ended Failed it is not a refused object to fix (new59 N6)
    assert not open_to_change({"spec": {"array": {"indices": "0-2"}}, "status": refused})
    assert OPEN.startswith("(!has(oldSelf.spec.array) && !has(self.spec.array) && ")
    assert f"oldSelf.status.pendingReason.code in ['{QUEUE_NOT_ALLOWED}', '{DEPENDENCY}']" in OPEN


def test_preemptible_has_its_default_so_writing_it_out_is_no_change() -> None:
    """Outside QA G6: `preemptible: false` written into a running job's YAML was refused as a change; like priority
    and queue, it has the default the job file has."""
    spec = _schema("federatedjobs")["properties"]["spec"]
    assert spec["properties"]["preemptible"]["default"] is False
    assert parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "x"},
                      "spec": {"kind": "training", "resources": {"cpu": "1"}}}).preemptible is False


def test_the_crds_validation_rules_are_understood_by_kubernetes_1_27() -> None:
    """The chart's floor (kubeVersion >=1.27): a rule's `fieldPath` and `reason` came in 1.28, and an older API
    server refuses the CRD that has them. Each rule says its field at the start of its message instead
    (`messageExpression` is 1.27's)."""
    paths = sorted(CRDS.glob("*.yaml"))
    assert paths
    for path in paths:
        for rule in _rules(yaml.safe_load(path.read_text())):
            assert set(rule) <= {"rule", "message", "messageExpression"}, (path.name, rule)


def _rules(node: object) -> list[dict[str, Any]]:
    """Every x-kubernetes-validations rule under `node`."""
    if isinstance(node, dict):
        return [*(node.get("x-kubernetes-validations") or []), *(r for v in node.values() for r in _rules(v))]
    if isinstance(node, list):
        return [r for item in node for r in _rules(item)]
    return []


def _pruned(node: object, schema: dict[str, Any], where: str) -> list[str]:
    """The fields of `node` the API server would drop as unknown: a structural schema keeps only the properties
    it names, unless it preserves unknown fields."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out: list[str] = []
    if isinstance(node, dict) and "properties" in schema:
        for key, value in node.items():
            if key in schema["properties"]:
                out += _pruned(value, schema["properties"][key], f"{where}.{key}")
            elif "additionalProperties" not in schema:
                out.append(f"{where}.{key}")
    elif isinstance(node, list) and "items" in schema:
        for i, item in enumerate(node):
            out += _pruned(item, schema["items"], f"{where}[{i}]")
    return out


@pytest.mark.parametrize("path", sorted([*EXAMPLES.glob("jobs/*.yaml"), *EXAMPLES.glob("k8s/*.yaml")]),
                         ids=lambda p: f"{Path(p).parent.name}/{Path(p).stem}")
def test_the_crd_keeps_every_field_of_the_examples(path: Path) -> None:
    """A field the CRD does not name is unknown to the API server: kubectl refuses it, and a client that does
    not ask for strict field validation (the federator writing a job from the gRPC API) has it dropped with
    only a warning, so the job would run on any model."""
    schema = _schema("federatedjobs")
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "FederatedJob"]
    assert docs and load_job_files(path)
    for doc in docs:
        assert _pruned(doc["spec"], schema["properties"]["spec"], "spec") == []


@pytest.mark.parametrize("key", ["acceleratorModels", "gpuModels"])
def test_the_crd_keeps_accelerator_models_under_either_name(key: str) -> None:
    spec = _schema("federatedjobs")["properties"]["spec"]
    doc = {"kind": "training", "resources": {"nvidia.com/gpu": 8}, key: ["H100"]}
    assert _pruned(doc, spec, "spec") == []
    assert re.fullmatch(spec["properties"][key]["items"]["pattern"], "H100")
    assert not re.fullmatch(spec["properties"][key]["items"]["pattern"], "H100 SXM")


@pytest.mark.parametrize("path", sorted(CRDS.glob("*.yaml")), ids=lambda p: Path(p).stem)
def test_no_key_is_a_yaml_accident(path: Path) -> None:
    """A comma in a flow-style description splits it into a bogus key; the API server refuses it on apply."""
    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                assert re.match(r"^[A-Za-z0-9_./-]+$", str(k)), f"{path.name}: suspicious key {k!r}"
                walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("crd", ["federatedjobs", "queues"])
def test_the_crds_take_a_quantity_in_the_forms_the_job_file_takes(crd: str) -> None:
    """kubectl and `federator submit` take the same quantities: the API server refuses by the CRD's pattern what
    the parser would refuse, and lets through what it reads (its other checks then name the field)."""
    from federator.model import QuantityError
    from federator.model.resources import parse_quantity

    patterns = set(re.findall(r"pattern: '(\^\(\[0-9\]\+.*?)'", (CRDS / f"{crd}.yaml").read_text()))
    assert len(patterns) == 1, patterns
    (pattern,) = patterns
    for raw in ["1", "1.5", ".5", "500m", "16Gi", "100u", "12345n", "1e3", "2E-3", "3E", "1Ei", "1e", "1e1000",
                "4 GB", "-1", "1.2.3", "Ki", "1ki", "0x10"]:
        try:
            parse_quantity(raw)
            parsed = True
        except QuantityError:
            parsed = False
        assert bool(re.fullmatch(pattern, raw)) == parsed, raw


def _unknown_keys(value: Any, schema: dict[str, Any], where: str = "status") -> list[str]:
    """The keys of `value` its structural schema does not name: the API server drops them without a word."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return [k for k in value if k not in props] + [
            u for k, v in value.items() if k in props for u in _unknown_keys(v, props[k], f"{where}.{k}")]
    if isinstance(value, list):
        return [u for v in value for u in _unknown_keys(v, schema.get("items") or {}, f"{where}[]")]
    return []


def test_every_member_cluster_status_field_written_is_in_the_crd() -> None:
    """A Kueue member's pool says how many free accelerators its ClusterQueue's quota holds back."""
    from federator.backends.kube.resources import member_cluster_status
    from federator.model import AcceleratorPool, ClusterCapacity, ClusterState

    pool = AcceleratorPool("NVIDIA-A100-SXM4-80GB", (2, 0, 0, 0, 0, 0, 0, 0, 1), 24, 24, vendor="nvidia",
                           family="A100", sharing="None", quota_held_accelerators=16)
    status = member_cluster_status(state=ClusterState.READY, connected=True, last_report_at=1.0,
                                   capacity=ClusterCapacity(accelerator_pools=(pool,)), gang_admission="kueue",
                                   message="member-b's agent cannot reach its API server since ...")
    assert status["accelerators"][0]["quotaHeld"] == 16
    assert status["models"] == "NVIDIA-A100-SXM4-80GB 8/24 (16 quota held)"
    assert _unknown_keys(status, _schema("memberclusters")["properties"]["status"]) == []


def test_kubectl_get_mc_columns_read_the_status_the_federator_writes() -> None:
    """The State column says what `federator get clusters` says (a provider's maintenance as Cordoned, a clamped
    report as OverBound), and `-o wide` the provider's reason: each column reads a field the schema keeps and the
    federator writes (a pruned field leaves a column blank without a word)."""
    from federator.backends.kube.resources import member_cluster_status
    from federator.model import ClusterState
    from federator.model.cordon import Cordon

    crd = yaml.safe_load((CRDS / "memberclusters.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    status = member_cluster_status(state=ClusterState.READY, connected=True, last_report_at=1.0, capacity=None,
                                   summary="Ready,Cordoned,OverBound",
                                   maintenance=Cordon("provider acme", 2.0, "driver upgrade"),
                                   over_bound="capacity.accelerator_pools: 68 accelerators in all ...")
    schema = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert _unknown_keys(status, schema) == []
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    shown = {name: status.get(path.split(".")[2]) for name, path in columns.items() if path.startswith(".status.")}
    assert shown["State"] == "Ready,Cordoned,OverBound" and shown["Maintenance"] == "driver upgrade"
    assert (status["state"], status["maintenanceSince"]) == ("Ready", "1970-01-01T00:00:02.000000Z")
    assert [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")] == [
        "Region", "State", "Cordoned", "Accelerators-Free", "Accelerators-Total", "Age"]


def test_a_members_orphans_and_region_mismatch_are_in_the_status_the_schema_keeps() -> None:
    """0.16.0: the orphan count (`federator get clusters`' ORPHANS) and the RegionMismatch condition
    (server/region_mismatch.py) as the federator writes them, each a field the schema keeps (a pruned one is dropped
    without a word), the count read by the Orphans column; both removed when nothing holds."""
    from dataclasses import replace as changed

    from federator.backends.kube.member_status import member_status
    from federator.server.federator import Federator
    from federator.server.region_mismatch import RegionMismatch
    from federator.store import SqliteJobStore

    from builders import cluster, pool

    fed = Federator(store=SqliteJobStore(Path(":memory:")), orphan_grace=1800.0)
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool("NVIDIA-H100", nodes=1)).capacity)
    assert (member_status(fed, rec)["orphanPlacements"], member_status(fed, rec)["conditions"]) == (None, None)
    fed.report(rec, changed(cluster("east-1", "east", pool("NVIDIA-H100", nodes=1)).capacity,
                            placement_ids=frozenset({"gone-1.g1.east-1", "gone-2.g1.east-1"})))
    rec.region_mismatch = RegionMismatch("east-1", "east", "north", "certificate", since=1.0)
    status = member_status(fed, rec)
    assert status["orphanPlacements"] == 2
    (condition,) = status["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == ("RegionMismatch", "True",
                                                                              "BoundElsewhere")
    crd = yaml.safe_load((CRDS / "memberclusters.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    assert _unknown_keys(status, version["schema"]["openAPIV3Schema"]["properties"]["status"]) == []
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Orphans"] == ".status.orphanPlacements"


def test_the_crd_keeps_same_as_and_takes_every_dependency_condition() -> None:
    """0.19.0 (outside QA qaml60 E3): an RL pipeline's rollout FederatedJob names its learner in spec.clusters.sameAs
    and waits on it with dependsOn condition afterstart. A CRD without them prunes sameAs (the rollout runs on any
    cluster) and refuses afterstart; the CRD's fields and enum are the job file's."""
    spec = _schema("federatedjobs")["properties"]["spec"]
    doc = {"kind": "inference", "resources": {"nvidia.com/gpu": 1}, "clusters": {"sameAs": ["learner"]},
           "dependsOn": {"condition": "afterstart", "jobs": ["learner"]}}
    assert _pruned(doc, spec, "spec") == []
    assert set(spec["properties"]["clusters"]["properties"]) == _known(
        {"kind": "training", "resources": {"cpu": 1}, "clusters": {"zz": 1}}, "spec.clusters.zz")
    same_as = spec["properties"]["clusters"]["properties"]["sameAs"]
    assert (same_as["minItems"], same_as["maxItems"], same_as["x-kubernetes-list-type"]) == (1, MAX_SAME_AS, "set")
    condition = spec["properties"]["dependsOn"]["properties"]["condition"]
    assert condition["enum"] == [c.value for c in Condition]
    assert parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "x"},
                      "spec": doc}).clusters.same_as == ("learner",)
