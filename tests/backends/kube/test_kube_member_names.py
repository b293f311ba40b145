"""The names of a placement's objects on members: within what each kind's controller allows for the names it
makes from them, the same on every call, and found again by an agent after a restart (old names too).

The controllers' own rules are written out here as they are in their sources (cited in each adapter's
`NAME_BUDGET`), so a copy that passes them is one the member takes and runs.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from test_kube_backend import FakeApi, backend

from federator.backends.kube.informer import ADDED
from federator.backends.kube.workloads import ADAPTERS, WorkloadError, adapter_for, workload_name
from federator.backends.kube.workloads.common import NAME_BUDGET, member_name
from federator.backends.kube.workloads.jobset import NAME_BUDGET as JOBSET_BUDGET
from federator.backends.kube.workloads.kubeflow import TRAINJOB_NAME_BUDGET
from federator.backends.kube.workloads.lws import NAME_BUDGET as LWS_BUDGET
from federator.backends.kube.workloads.ray import NAME_BUDGET as RAY_BUDGET
from federator.jobfile import JobFileError, parse_job
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

from workload_objects import ALL, fresh

# The placements of QA's findings (the job's name, its id's digest, the generation, the member) and more.
JOBSET_PID = "llama3-70b-sft-lr3e5-98f706.g1.member-a"  # a 20-character job name the member refused
LWS_PID = "llama-405b-chat-serve-prod-a1cf29.g1.member-b"  # 26 characters: worker pods never created
PIDS = ["a.g1.b", "pretrain-3f2a1b.g2.member-a", JOBSET_PID, LWS_PID,
        "a-very-long-name-that-someone-gave-their-fine-tuning-run-run-02-0c1d2e.g14.gpu-cluster-frankfurt-1",
        "70b-sft-1a2b3c.g1.member-a", "UPPER_case.g1.c", "x" * 200 + ".g1.member-a"]
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
REVISION_HASH = "-" + "9" * 10  # the longest hash a StatefulSet's controller-revision-hash ends in


def placement(pid: str, replicas: int = 2) -> Placement:
    return Placement(PlacementId(pid), JobId(pid.split(".")[0]), "member-a", "east", replicas, "", 1)


def render(obj: dict[str, Any], pid: str, replicas: int = 0) -> dict[str, Any]:
    adapter = adapter_for(obj)
    return adapter.render(obj, placement(pid, replicas or 2 * adapter.group_size(obj)), namespace="w")


@pytest.mark.parametrize("kind", sorted(ALL))
@pytest.mark.parametrize("pid", PIDS)
def test_every_kind_names_its_copy_within_its_budget_the_same_every_time(kind: str, pid: str) -> None:
    adapter = adapter_for(fresh(kind))
    name = adapter.member_name(pid)
    assert name == adapter.member_name(pid)  # a restarted agent finds it by name
    budget = {"JobSet": JOBSET_BUDGET, "LeaderWorkerSet": LWS_BUDGET, "RayJob": RAY_BUDGET,
              "TrainJob": TRAINJOB_NAME_BUDGET}.get(kind, NAME_BUDGET)
    assert len(name) <= budget, name
    assert (DNS1035_LABEL if kind in ("JobSet", "LeaderWorkerSet", "RayJob", "TrainJob", "PyTorchJob")
            else DNS1123_LABEL).match(name), name
    assert adapter.member_name(pid + "x") != name  # one per placement
    assert adapter.member_name(pid.replace(".g", ".g9", 1)) != name  # a re-placement does not collide
    readable = re.sub(r"[^a-z0-9]+", "-", pid.lower())[:12].strip("-")
    assert readable in name  # the job stays recognisable in `kubectl get`
    assert render(fresh(kind), pid)["metadata"]["name"] == name


@pytest.mark.parametrize("kind", ["Job", "Deployment", "StatefulSet"])
def test_the_built_in_kinds_keep_the_names_they_had(kind: str) -> None:
    """52 holds for them already (an Indexed Job's hostnames, a StatefulSet's revision label): an older agent's
    objects and a newer agent's have one name, but for a Job whose placement id starts with a digit, whose
    rendezvous Service needs a name that starts with a letter (the agent looks for the old name too)."""
    for pid in PIDS:
        if kind == "Job" and not pid[0].isalpha():
            assert adapter_for(fresh(kind)).member_name(pid).startswith("p-")
            continue
        assert adapter_for(fresh(kind)).member_name(pid) == workload_name(pid)
        assert len(workload_name(pid) + REVISION_HASH) <= 63  # StatefulSet: controller-revision-hash


def test_a_short_dns_placement_id_is_its_own_name() -> None:
    assert member_name("serve-1") == "serve-1"
    assert member_name("serve-1", 40, dns1035=True) == "serve-1"
    assert member_name("1-serve", 40, dns1035=True).startswith("p-1-serve-")  # RFC 1035 starts with a letter


def jobset_webhook_problems(js: dict[str, Any]) -> list[str]:
    """JobSet v0.10.1's `ValidateCreate` name checks (pkg/webhooks/jobset_webhook.go), as written there."""
    problems = []
    name = js["metadata"]["name"]
    for rjob in js["spec"]["replicatedJobs"]:
        longest_job = f"{name}-{rjob['name']}-{rjob.get('replicas', 1) - 1}"
        if len(longest_job) > 63 or not DNS1035_LABEL.match(longest_job):
            problems.append(f"{longest_job}: job names generated for this JobSet will exceed 63 characters")
        spec = rjob["template"]["spec"]
        if spec.get("completionMode", "Indexed") == "Indexed" and spec.get("completions") is not None:
            pod = f"{longest_job}-{spec['completions'] - 1}-abcde"
            if len(pod) > 63 or not DNS1035_LABEL.match(pod):
                problems.append(f"{pod}: pod names generated for this JobSet will exceed 63 characters")
    return problems


@pytest.mark.parametrize("pid", PIDS)
def test_jobsets_webhook_takes_the_copy_of_a_long_named_job(pid: str) -> None:
    js = render(fresh("JobSet"), pid)
    assert not jobset_webhook_problems(js), js["metadata"]["name"]


def test_a_replicated_job_name_the_jobset_webhook_would_refuse_is_refused_naming_the_field() -> None:
    js = fresh("JobSet")
    js["spec"]["replicatedJobs"][1]["name"] = "distributed-workers"
    with pytest.raises(WorkloadError) as err:
        render(js, JOBSET_PID)
    assert err.value.field == "spec.replicatedJobs[1].name"
    assert "'distributed-workers' is too long" in err.value.problem and "63" in err.value.problem
    assert "leaves 16 characters" in err.value.problem  # 63 - 36 - "-" - "-0-1-abcde"
    js["spec"]["replicatedJobs"][1]["name"] = "distributed-work"  # 16: fits with whatever placement
    assert not jobset_webhook_problems(render(js, "x" * 200 + ".g1.member-a"))


def test_a_jobset_the_member_would_refuse_is_refused_at_submit() -> None:
    js = fresh("JobSet")
    js["spec"]["replicatedJobs"][1]["name"] = "distributed-workers-x"
    doc = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "w"},
           "spec": {"workload": js}}
    with pytest.raises(JobFileError) as err:
        parse_job(doc)
    assert any(p.field == "spec.workload.spec.replicatedJobs[1].name" for p in err.value.problems), err.value


def lws_worker_labels(lws: dict[str, Any]) -> list[str]:
    """The longest labels the StatefulSet controller gives an LWS's pods: its leader StatefulSet `<lws>` and the
    last group's worker StatefulSet `<lws>-<groupIndex>` (LWS v0.7.0 pod_controller.go), each `<sts>-<hash>`,
    and the last worker pod's name (the statefulset.kubernetes.io/pod-name label and its hostname)."""
    name, groups = lws["metadata"]["name"], lws["spec"]["replicas"]
    size = lws["spec"]["leaderWorkerTemplate"].get("size", 1)
    worker_sts = f"{name}-{groups - 1}"
    return [name + REVISION_HASH, worker_sts + REVISION_HASH, f"{worker_sts}-{size - 1}"]


@pytest.mark.parametrize("pid", PIDS)
@pytest.mark.parametrize("groups", [1, 12, 1000])
def test_lws_worker_pods_of_a_long_named_job_get_valid_labels(pid: str, groups: int) -> None:
    lws = fresh("LeaderWorkerSet")
    size = adapter_for(lws).group_size(lws)
    rendered = render(lws, pid, replicas=groups * size)
    assert rendered["spec"]["replicas"] == groups
    for label in lws_worker_labels(rendered):
        assert len(label) <= 63, label


def test_a_trainjobs_jobset_gets_names_the_jobset_webhook_takes() -> None:
    """Trainer names the JobSet after the TrainJob; its longest replicated Job is the dataset initializer."""
    for pid in PIDS:
        tj = render(fresh("TrainJob"), pid)
        assert len(f"{tj['metadata']['name']}-dataset-initializer-0-0-abcde") <= 63


def test_kuberay_takes_the_name_of_a_rayjobs_copy() -> None:
    for pid in PIDS:
        assert len(render(fresh("RayJob"), pid)["metadata"]["name"]) <= 47  # MaxRayJobNameLength


def test_every_adapter_has_a_budget_no_larger_than_a_dns_label() -> None:
    for adapter in ADAPTERS:
        assert len(adapter.member_name("y" * 300)) <= 63


# -- the agent finds its objects by name: new names and the ones older agents gave ---------------------------


SPEC = JobSpec(name="serve", kind=JobKind.INFERENCE, replicas=2, resources=Resources(cpu_milli=1000))


def _lws_of(pid: str, name: str) -> dict[str, Any]:
    lws = render(fresh("LeaderWorkerSet"), pid)
    lws["metadata"]["name"] = name
    return lws


@pytest.mark.parametrize("older", [False, True], ids=["this-agent", "older-agent"])
def test_the_agent_finds_and_deletes_an_lws_by_either_name(older: bool) -> None:
    api = FakeApi()
    b, _ = backend(api)
    adapter = adapter_for(fresh("LeaderWorkerSet"))
    b.served[adapter.key] = adapter
    informer = b._workload_informer(adapter)
    name = workload_name(LWS_PID) if older else adapter.member_name(LWS_PID)
    assert adapter.member_name(LWS_PID) != workload_name(LWS_PID)
    informer._apply_event(ADDED, _lws_of(LWS_PID, name))
    found = b._workload(LWS_PID)
    assert found is not None and found["metadata"]["name"] == name

    async def cancel() -> None:
        await b.cancel(LWS_PID)
        await b.stop()

    asyncio.run(cancel())
    assert f"leaderworkersets/{name}" in api.deleted


def test_launch_creates_the_jobset_under_its_kinds_name() -> None:
    api = FakeApi()
    b, _ = backend(api)
    adapter = adapter_for(fresh("JobSet"))
    b.served[adapter.key] = adapter
    spec = JobSpec(name="llama3-70b-sft-lr3e5", kind=JobKind.TRAINING, replicas=2, resources=Resources(),
                   workload_json=json.dumps(fresh("JobSet")))

    async def launch() -> str | None:
        try:
            return await b.launch(placement(JOBSET_PID), spec)
        finally:
            await b.stop()

    assert asyncio.run(launch()) is None
    (created,) = api.created
    assert created["metadata"]["name"] == adapter.member_name(JOBSET_PID)
    assert not jobset_webhook_problems(created)


# -- a member that will not create an LWS's worker pods says so ---------------------------------------------


def _lws_pod(group: int, worker: int, phase: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"leaderworkerset.sigs.k8s.io/group-index": str(group),
                                    "leaderworkerset.sigs.k8s.io/worker-index": str(worker)}},
            "status": {"phase": phase}}


def test_an_lws_whose_worker_pods_are_never_created_says_where_the_member_says_why() -> None:
    """QA finding 1: the leaders ran, the API server refused every worker pod, and the placement said only
    "0 of 2 replicas running"; the refusals are in the worker StatefulSet's FailedCreate events."""
    lws = render(fresh("LeaderWorkerSet"), LWS_PID, replicas=8)  # 2 groups of 4
    adapter = adapter_for(lws)
    name = lws["metadata"]["name"]
    phase, message = adapter.phase(lws, [_lws_pod(0, 0, "Running"), _lws_pod(1, 0, "Running")])
    assert phase is JobPhase.PLACED
    assert message.startswith("2 of 8 replicas running; 2 groups' leaders run but none of their worker pods were "
                              "created"), message
    assert f"FailedCreate events of StatefulSet {name}-0" in message
    _, message = adapter.phase(lws, [_lws_pod(0, 0, "Running"), _lws_pod(0, 1, "Pending"), _lws_pod(1, 0, "Running")])
    assert "group 1's leader runs but none of its worker pods was created" in message
    assert f"StatefulSet {name}-1 " in message
    _, message = adapter.phase(lws, [_lws_pod(0, 0, "Running"), _lws_pod(0, 1, "Pending")])
    assert "worker pods" not in message  # a leader not running yet, or workers on their way: nothing to say


def test_a_gang_whose_job_name_starts_with_a_digit_gets_a_rendezvous_service_name_the_api_server_takes() -> None:
    """A multi-pod training Job's headless Service takes the Job's name, and a Service name is an RFC 1035
    label: a job named "70b-sft" (a common kind of name) had its Service refused, so its gang never met."""
    from federator.backends.kube.workloads import build_workload
    from federator.backends.kube.workloads.rendezvous import rendezvous_service

    spec = JobSpec(name="70b-sft", kind=JobKind.TRAINING, replicas=2, resources=Resources(cpu_milli=1000))
    placement = Placement(PlacementId("70b-sft-1a2b3c.g1.member-a"), JobId("70b-sft-1a2b3c"), "member-a", "r", 2,
                          "", 1)
    job = build_workload(placement, spec, namespace="ns")
    job["metadata"]["uid"] = "u"
    service = rendezvous_service(job, placement, port=29500)
    assert DNS1035_LABEL.match(service["metadata"]["name"]), service["metadata"]["name"]
    assert len(service["metadata"]["name"]) <= NAME_BUDGET
    assert build_workload(placement, spec, namespace="ns")["metadata"]["name"] == job["metadata"]["name"]
