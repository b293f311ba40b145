"""The agent's Kubernetes backend between informer events and the agent: phases, idempotency, cancel."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace
from typing import Any

import pytest

from federator.backends.kube.api import ForbiddenError, InvalidError, KubeError, NotFoundError
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.informer import ADDED, DELETED, MODIFIED
from federator.backends.kube.workloads import TRAINJOB_POD_LABEL, adapter_for, build_workload
from federator.model import JobId, JobKind, JobPhase, JobSpec, Placement, PlacementId, Resources

from workload_objects import fresh

PID = "train-abc.g1.a"


class FakeApi:
    server = "fake"

    def __init__(self, *, fail_deletes: int = 0) -> None:
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.fail_deletes = fail_deletes
        self.pods: list[dict[str, Any]] = []  # what a list of pods finds: those the pod watch no longer shows
        self.pod_lists: list[str | None] = []  # the label selector of each list of pods

    def list(self, res: Any, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> dict[str, Any]:
        self.pod_lists.append(label_selector)
        key, _, value = (label_selector or "").partition("=")
        return {"metadata": {"resourceVersion": "1"},
                "items": [p for p in self.pods if not key or p["metadata"].get("labels", {}).get(key) == value]}

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.created.append(body)
        return {**body, "metadata": {**body["metadata"], "uid": f"uid-{len(self.created)}"}}  # as a server does

    def delete(self, res: Any, name: str, namespace: str | None = None, *, propagation: str = "Background") -> None:
        if self.fail_deletes:
            self.fail_deletes -= 1
            raise KubeError(0, "connection refused")
        self.deleted.append(f"{res.plural}/{name}")


def placement() -> Placement:
    return Placement(PlacementId(PID), JobId("train-abc"), "a", "east", 2, "", 1)


SPEC = JobSpec(name="train", kind=JobKind.TRAINING, replicas=2, resources=Resources(cpu_milli=1000))


def backend(api: FakeApi) -> tuple[KubeBackend, list[tuple[str, JobPhase]]]:
    b = KubeBackend(api, namespace="w")  # type: ignore[arg-type]
    updates: list[tuple[str, JobPhase]] = []
    b._on_update = lambda pid, phase, _msg, **_: updates.append((pid, phase))
    b._started = True
    return b, updates


def job_obj(status: dict[str, Any]) -> dict[str, Any]:
    job = build_workload(placement(), SPEC, namespace="w")
    job["status"] = status
    return job


def pod(name: str, phase: str) -> dict[str, Any]:
    tmpl = build_workload(placement(), SPEC, namespace="w")["spec"]["template"]
    return {"metadata": {"name": name, "namespace": "w", **tmpl["metadata"]}, "spec": {"nodeName": "n0"},
            "status": {"phase": phase}}


def accounted(b: KubeBackend) -> frozenset[str]:
    """The placements a capacity report made now would list as counted."""
    return b._accounted(b.pods.cache.values())


def feed(b: KubeBackend, informer: Any, kind: str, obj: dict[str, Any]) -> None:
    informer._apply_event(kind, obj)


def changes(seen: list[Any]) -> list[Any]:
    """`seen` without repeats in a row: the phase changes, where a new message of the same phase ("1 of 2
    replicas running" after "0 of 2") is an update too."""
    return [x for i, x in enumerate(seen) if i == 0 or seen[i - 1] != x]




def one_after_the_other(b: KubeBackend) -> None:
    """A 2-replica gang's pods run one after the other: p0 finishes (and leaves the active-pod watch),
    the Job counts it, and its freed node takes p1."""
    feed(b, b.pods, DELETED, gang_pod("p0", "n0", "Succeeded"))
    feed(b, b.jobs, MODIFIED, job_obj({"succeeded": 1}))
    feed(b, b.pods, MODIFIED, gang_pod("p1", "n0", "Running"))



def refused_half_gang(api: FakeApi, updates: list[tuple[str, JobPhase, str]]) -> None:
    """The gang was refused for its timeout, one of its two pods bound 6 s in, and its Job deleted."""
    assert any(d.startswith("jobs/train-abc-g1-a-") for d in api.deleted)
    assert updates[-1][:2] == (PID, JobPhase.CANCELLED)
    assert updates[-1][2].startswith("refused: gang timeout on this cluster: 1 of 2 pods bound to nodes after 6s")



async def last_tick(b: KubeBackend, clock: _Clock, seconds: float) -> None:
    """`seconds` on, one pass of the gang watch, then the backend stops."""
    clock.now += seconds
    await b._check_gangs()
    await b.stop()


async def _deleted(api: FakeApi, seconds: float = 5.0) -> None:
    """Wait for the backend's background delete to reach the API (a test's asserts then say if it did)."""
    for _ in range(int(seconds / 0.05)):
        if api.deleted:
            return
        await asyncio.sleep(0.05)


def test_phases_follow_the_job_and_its_pods_and_never_go_back() -> None:
    b, updates = backend(FakeApi())
    feed(b, b.jobs, ADDED, job_obj({}))
    feed(b, b.pods, ADDED, pod("p0", "Running"))
    feed(b, b.pods, ADDED, pod("p1", "Running"))
    assert accounted(b) == frozenset({PID})  # both pods bound: the report counts them
    feed(b, b.pods, DELETED, pod("p0", "Succeeded"))  # one replica done early
    feed(b, b.jobs, MODIFIED, job_obj({"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}))
    feed(b, b.jobs, MODIFIED, job_obj({}))  # a stale event cannot undo it
    assert changes(updates) == [(PID, JobPhase.PLACED), (PID, JobPhase.RUNNING), (PID, JobPhase.SUCCEEDED)]
    assert b.placements() == {PID: JobPhase.SUCCEEDED}
    assert PID not in accounted(b)  # finished: it holds nothing


def test_a_placement_whose_pods_hold_nothing_is_not_listed_as_counted() -> None:
    """A failed pod still names its node, but holds nothing in the report: listing its placement as counted made
    the report contradict itself (server/consistency.py, outside QA F7), while its replacement waited unbound."""
    b, _ = backend(FakeApi())
    feed(b, b.jobs, ADDED, job_obj({}))
    feed(b, b.pods, ADDED, pod("p0", "Running"))
    feed(b, b.pods, ADDED, pod("p1", "Failed"))  # its replacement is not bound yet
    assert PID not in accounted(b)
    feed(b, b.pods, MODIFIED, pod("p1", "Running"))
    assert accounted(b) == frozenset({PID})
    assert PID not in b._accounted([])  # leaving: its pods count as gone already


def test_a_job_deleted_behind_the_agents_back_is_stopped_by_the_cluster() -> None:
    """The member's operator deleted it, not the user's code: Cancelled, so the federator queues the job again.
    Reported Failed, the job was over for good (stop 41's kube QA)."""
    b, updates = backend(FakeApi())
    feed(b, b.jobs, ADDED, job_obj({}))
    feed(b, b.jobs, DELETED, job_obj({}))
    assert updates[-1] == (PID, JobPhase.CANCELLED)
    assert PID not in b.placements()


def test_launch_is_idempotent_and_cancel_survives_a_failing_api() -> None:
    async def run() -> tuple[FakeApi, list[tuple[str, JobPhase]]]:
        api = FakeApi(fail_deletes=1)
        b, updates = backend(api)
        assert await b.launch(placement(), SPEC) is None
        assert await b.launch(placement(), SPEC) is None
        job, service = api.created  # the gang's Job, then its rendezvous Service, owned by the Job
        assert (job["kind"], service["kind"]) == ("Job", "Service")
        assert service["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert service["spec"]["clusterIP"] == "None"
        await b.cancel(PID)  # the first delete fails: retried in the background, the stream is not broken
        assert updates == [(PID, JobPhase.CANCELLED)]
        await _deleted(api)
        await b.stop()
        return api, updates

    api, _ = asyncio.run(run())
    assert api.deleted[0].startswith("jobs/train-abc-g1-a-")
    assert any(d.startswith("services/train-abc-g1-a-") for d in api.deleted)  # the Service goes too


def test_a_trainjobs_pods_are_found_by_its_jobsets_name() -> None:
    """Trainer v2 copies no placement annotation onto pods; the JobSet it makes (named as the TrainJob) labels them."""
    b, updates = backend(FakeApi())
    trainjob = build_workload(placement(), replace(SPEC, workload_json=json.dumps(fresh("TrainJob"))), namespace="w")
    informer = b._workload_informer(adapter_for(trainjob))
    feed(b, informer, ADDED, trainjob)
    name = trainjob["metadata"]["name"]

    def trainer_pod(pod_name: str, jobset: str, namespace: str = "w") -> dict[str, Any]:
        return {"metadata": {"name": pod_name, "namespace": namespace, "labels": {TRAINJOB_POD_LABEL: jobset}},
                "spec": {"nodeName": "n0"}, "status": {"phase": "Running"}}

    feed(b, b.pods, ADDED, trainer_pod("other", "someone-elses"))  # not ours
    feed(b, b.pods, ADDED, trainer_pod("elsewhere", name, namespace="default"))  # same name, not our namespace
    feed(b, b.pods, ADDED, trainer_pod("node-0", name))
    assert [p["metadata"]["name"] for p in b._pods_of(PID)] == ["node-0"]
    assert PID not in accounted(b) and changes(updates) == [(PID, JobPhase.PLACED)]  # 1 of 2 bound
    feed(b, b.pods, ADDED, trainer_pod("node-1", name))
    assert accounted(b) == frozenset({PID})  # the capacity report counts them, the gang watch sees them whole
    assert changes(updates) == [(PID, JobPhase.PLACED), (PID, JobPhase.RUNNING)]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gang_backend(api: FakeApi, clock: _Clock) -> tuple[KubeBackend, list[tuple[str, JobPhase, str]]]:
    b = KubeBackend(api, namespace="w", gang_timeout=5)  # type: ignore[arg-type]
    b.gang.clock = clock
    updates: list[tuple[str, JobPhase, str]] = []
    b._on_update = lambda pid, phase, msg, **_: updates.append((pid, phase, msg))
    b._started = True
    return b, updates


def gang_pod(name: str, node: str = "", phase: str = "Pending") -> dict[str, Any]:
    tmpl = build_workload(placement(), SPEC, namespace="w")["spec"]["template"]
    return {"metadata": {"name": name, "namespace": "w", **tmpl["metadata"]},
            "spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}


async def launched_gang(api: FakeApi, clock: _Clock) -> tuple[KubeBackend, list[tuple[str, JobPhase, str]]]:
    """A two-replica gang this agent launched, its Job seen, its first replica running on n0."""
    b, updates = gang_backend(api, clock)
    assert await b.launch(placement(), SPEC) is None
    feed(b, b.jobs, ADDED, job_obj({}))
    feed(b, b.pods, ADDED, gang_pod("p0", "n0", "Running"))
    return b, updates


def test_a_gang_whose_replicas_ran_one_after_another_is_refused_at_its_timeout() -> None:
    """A member's scheduler can bind the last replica only once the first has finished and freed its node.
    The Job then counts one succeeded and one running, which reads as Running; but the replicas never held
    nodes together, which is what a gang is (a rendezvous would have waited), so the timeout still refuses it."""
    async def run() -> tuple[FakeApi, list[tuple[str, JobPhase, str]]]:
        api, clock = FakeApi(), _Clock()
        b, updates = await launched_gang(api, clock)
        feed(b, b.pods, ADDED, gang_pod("p1"))  # no room for it yet
        clock.now += 3
        await b._check_gangs()
        assert not api.deleted  # still in time
        one_after_the_other(b)  # p0 finished and left the active-pod watch; its freed node took p1
        assert updates[-1][1] is JobPhase.RUNNING  # the Job's own counts: 1 done + 1 running
        await last_tick(b, clock, 3)
        return api, updates

    refused_half_gang(*asyncio.run(run()))


def test_a_gang_seen_whole_once_is_never_refused_and_an_unwatched_stretch_is_trusted() -> None:
    async def run() -> tuple[FakeApi, list[tuple[str, JobPhase, str]]]:
        api, clock = FakeApi(), _Clock()
        b, updates = await launched_gang(api, clock)
        feed(b, b.pods, ADDED, gang_pod("p1", "n1", "Running"))  # whole, if only for a moment
        feed(b, b.pods, DELETED, gang_pod("p0", "n0", "Succeeded"))  # one replica done early
        clock.now += 60
        await b._check_gangs()
        assert not api.deleted

        # Another placement, launched by this process, whose pod watch then broke: the re-list shows the
        # first replica gone and the last one running. What happened in between went unseen, so the
        # member's word (Running) stands, as it does for a placement a restarted agent finds.
        other = replace(placement(), placement_id=PlacementId("train-xyz.g1.a"), job_id=JobId("train-xyz"))
        assert await b.launch(other, SPEC) is None
        job = build_workload(other, SPEC, namespace="w")
        tmpl = job["spec"]["template"]
        feed(b, b.jobs, ADDED, {**job, "status": {}})
        b.pods.relists += 1
        feed(b, b.jobs, MODIFIED, {**job, "status": {"succeeded": 1}})
        feed(b, b.pods, ADDED, {"metadata": {"name": "q1", "namespace": "w", **tmpl["metadata"]},
                                "spec": {"nodeName": "n0"}, "status": {"phase": "Running"}})
        assert updates[-1][:2] == ("train-xyz.g1.a", JobPhase.RUNNING)
        await last_tick(b, clock, 60)
        return api, updates

    api, updates = asyncio.run(run())
    assert not api.deleted
    assert all(phase is not JobPhase.CANCELLED for _, phase, _ in updates)


class _SlowServiceApi(FakeApi):
    """A member that answers the rendezvous Service's create slowly (a loaded API server): the test runs
    informer events while the launch waits for it."""

    def __init__(self) -> None:
        super().__init__()
        self.service_asked = threading.Event()
        self.answer = threading.Event()

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        if res.plural == "services":
            self.service_asked.set()
            self.answer.wait(10)
        return super().create(res, body, namespace)


def test_a_replica_bound_before_the_launch_returns_does_not_make_a_gang_of_one() -> None:
    """ci9: the pod watch can run ahead of the Job watch and of the launch itself (its Service create
    still in flight). The first replica bound then is one of the placement's two, not a whole gang of one."""
    async def run() -> tuple[_SlowServiceApi, list[tuple[str, JobPhase, str]]]:
        api, clock = _SlowServiceApi(), _Clock()
        b, updates = gang_backend(api, clock)
        launch = asyncio.get_running_loop().create_task(b.launch(placement(), SPEC))
        assert await asyncio.to_thread(api.service_asked.wait, 10)
        feed(b, b.pods, ADDED, gang_pod("p0", "n0", "Running"))  # before the Job's own event, mid-launch
        feed(b, b.pods, ADDED, gang_pod("p1"))
        api.answer.set()
        assert await launch is None
        feed(b, b.jobs, ADDED, job_obj({}))
        one_after_the_other(b)  # never together
        await last_tick(b, clock, 6)
        return api, updates

    refused_half_gang(*asyncio.run(run()))


def test_a_gang_past_its_timeout_is_refused_by_the_next_event_not_reported_finished_before_the_tick() -> None:
    """The gang watch ticks every few seconds (a quarter of the timeout, at most 5 s); a loaded agent
    ticks later still. A partial gang whose last replica finishes between its deadline and the next tick
    must not read as Succeeded: the verdict comes before any phase the agent reports."""
    async def run() -> tuple[FakeApi, list[tuple[str, JobPhase, str]]]:
        api, clock = FakeApi(), _Clock()
        b, updates = await launched_gang(api, clock)
        feed(b, b.pods, ADDED, gang_pod("p1"))
        clock.now += 3
        one_after_the_other(b)
        clock.now += 3  # past the 5 s timeout; no tick has run
        feed(b, b.pods, DELETED, gang_pod("p1", "n0", "Succeeded"))
        feed(b, b.jobs, MODIFIED, job_obj({"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}))
        await b._check_gangs()  # the tick, late: nothing left to do
        await _deleted(api)  # the refusal deletes the workload in the background
        await b.stop()
        return api, updates

    api, updates = asyncio.run(run())
    assert changes([phase for _, phase, _ in updates]) == [JobPhase.PLACED, JobPhase.RUNNING, JobPhase.CANCELLED]
    # judged on the gang as it was before the last replica finished: 1 of its 2 pods bound
    assert updates[-1][2].startswith("refused: gang timeout on this cluster: 1 of 2 pods bound to nodes after 6s")
    assert any(d.startswith("jobs/train-abc-g1-a-") for d in api.deleted)


def test_a_gang_that_finished_within_its_timeout_stays_finished() -> None:
    """Never whole, but done before its deadline: the timeout had not run out, so Succeeded stands (the
    timeout bounds how long a partial gang may hold nodes; this one let them go in time)."""
    async def run() -> tuple[FakeApi, list[tuple[str, JobPhase, str]]]:
        api, clock = FakeApi(), _Clock()
        b, updates = await launched_gang(api, clock)
        feed(b, b.pods, ADDED, gang_pod("p1"))
        clock.now += 2
        feed(b, b.pods, DELETED, gang_pod("p0", "n0", "Succeeded"))
        feed(b, b.pods, MODIFIED, gang_pod("p1", "n0", "Running"))
        clock.now += 2
        feed(b, b.pods, DELETED, gang_pod("p1", "n0", "Succeeded"))
        feed(b, b.jobs, MODIFIED, job_obj({"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}))
        await last_tick(b, clock, 60)
        return api, updates

    api, updates = asyncio.run(run())
    assert not api.deleted
    assert updates[-1][:2] == (PID, JobPhase.SUCCEEDED)


def test_a_refusal_whose_delete_fails_does_not_hold_up_the_gang_watch() -> None:
    async def run() -> tuple[FakeApi, list[tuple[str, JobPhase, str]]]:
        api, clock = FakeApi(fail_deletes=1), _Clock()
        b, updates = await launched_gang(api, clock)
        feed(b, b.pods, ADDED, gang_pod("p1"))
        clock.now += 6
        await asyncio.wait_for(b._check_gangs(), 0.5)  # the first delete fails: retried in the background
        assert updates[-1][:2] == (PID, JobPhase.CANCELLED) and not api.deleted
        await _deleted(api)
        await b.stop()
        return api, updates

    api, _ = asyncio.run(run())
    assert any(d.startswith("jobs/train-abc-g1-a-") for d in api.deleted)


class RefusingApi(FakeApi):
    """An API server that refuses every create with `error`."""

    def __init__(self, error: KubeError) -> None:
        super().__init__()
        self.error = error

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (NotFoundError(404, 'namespaces "w" not found', reason="NotFound"), "namespace w does not exist here"),
        (ForbiddenError(403, 'jobs.batch is forbidden: User "system:serviceaccount:x:agent" cannot create resource '
                             '"jobs" in API group "batch" in the namespace "w"', reason="Forbidden"),
         "the agent may not create it in w"),
    ],
    ids=["no-namespace", "no-rbac"],
)
def test_a_member_without_the_agents_set_up_says_which_file_to_apply(error: KubeError, hint: str) -> None:
    """Seen on a test bed: the workloads namespace missing, every placement was refused with the API
    server's words alone. The refusal (the job's message) now says what to apply."""
    b, _ = backend(RefusingApi(error))
    why = asyncio.run(b.launch(placement(), SPEC))
    assert why is not None
    assert error.message in why and f"HTTP {error.status} {error.reason}" in why  # the API server's own words stay
    assert hint in why and "deploy/kubernetes/rbac-agent.yaml" in why and "--namespace" in why


def test_a_quota_the_member_enforces_is_refused_in_its_own_words_without_a_set_up_hint() -> None:
    error = ForbiddenError(403, 'jobs "x" is forbidden: exceeded quota: gpu, requested: nvidia.com/gpu=8',
                           reason="Forbidden")
    b, _ = backend(RefusingApi(error))
    why = asyncio.run(b.launch(placement(), SPEC))
    assert why is not None and "exceeded quota" in why
    assert "rbac-agent.yaml" not in why


def test_a_member_that_refuses_the_object_is_named_for_its_cause_within_the_pending_reasons_length() -> None:
    """Seen on a test bed: a container name the member refused (422) left the job's pending reason, which keeps
    160 characters of each cluster's refusal (server/refusals.py), at `federator-workloads/<name>: the member
    cluster refused the Job: HTTP 422 Invalid: Job.batch "<name>" i...`, the field never named. The cause now
    comes first, without the API server's repetition of the object's name."""
    from federator.server.refusals import WHY_CHARS

    api = FakeApi()
    name = build_workload(placement(), SPEC, namespace="w")["metadata"]["name"]
    cause = ('spec.template.spec.containers[0].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must '
             "consist of lower case alphanumeric characters or '-'")
    error = InvalidError(422, f'Job.batch "{name}" is invalid: {cause}', reason="Invalid")
    b, _ = backend(RefusingApi(error))
    why = asyncio.run(b.launch(placement(), SPEC))
    assert why == f"the member cluster refused the Job: {cause} (HTTP 422 Invalid; w/{name})"
    assert "spec.template.spec.containers[0].name" in why[:WHY_CHARS]
    assert api.created == []


def test_a_template_the_agent_cannot_render_is_refused_naming_the_field_and_nothing_is_created() -> None:
    """A job stored before the federator checked template shapes at submit (server/templates.py) reaches an agent:
    the launch is refused naming the field, as at submit, not with an AttributeError and a traceback."""
    api = FakeApi()
    b, _ = backend(api)
    bad = replace(SPEC, pod_template_json=json.dumps({"spec": {"containers": "oops"}}))
    why = asyncio.run(b.launch(placement(), bad))
    assert why == "the job's pod template cannot be rendered here: spec.template.spec.containers: must be a list " \
                  "of containers", why
    assert api.created == []


def test_a_launch_renders_the_devices_of_the_vendor_the_placement_chose() -> None:
    """Two vendors' pools of one model name on a member: the placement's vendor decides whose devices the pods
    ask for. The agent read a field the placement does not have, so it took whichever pool had more free."""
    from federator.backends.kube.devices import DeviceGroup, Sharing

    b, _ = backend(FakeApi())
    groups = [DeviceGroup("n1", "alpha", "X100", "alpha.com/npu", (("alpha.com/model", "X100"),), Sharing.NONE, 8, 8,
                          1000),
              DeviceGroup("n2", "beta", "X100", "beta.com/xpu", (("beta.com/model", "X100"),), Sharing.NONE, 4, 4,
                          1000)]
    b.device_groups = lambda: groups  # type: ignore[method-assign]
    b._usable_nodes = lambda: {"n1", "n2"}  # type: ignore[method-assign]
    chosen = replace(placement(), accelerator_model="X100", accelerator_vendor="beta")
    request = b._accelerator(chosen, replace(SPEC, resources=Resources(cpu_milli=1000, accelerator_milli=2000)))
    assert not isinstance(request, str)
    assert dict(request.limits) == {"beta.com/xpu": "2"} and dict(request.node_selector) == {"beta.com/model": "X100"}


def test_the_workload_keeps_the_model_the_placement_runs_on_for_a_restarted_agent() -> None:
    """The Launch's placement.accelerator_model goes on the workload object (federator.io/accelerator-model), and a
    restarted agent reads it back to say it at its re-sync (JobUpdate.accelerator_model): how the federator books a
    placement it adopts after a restore of its store on the model it runs on, not its first alternative's."""
    from federator.agent.accelerator_models import KeepsAcceleratorModels
    from federator.backends.kube.devices import DeviceGroup, Sharing

    on_a100 = replace(placement(), accelerator_model="NVIDIA-A100-SXM4-80GB", accelerator_vendor="nvidia")
    gpus = replace(SPEC, resources=Resources(cpu_milli=1000, accelerator_milli=1000))

    async def run() -> tuple[FakeApi, KubeBackend]:
        api = FakeApi()
        b, _ = backend(api)
        b.device_groups = lambda *_: [DeviceGroup(  # type: ignore[method-assign]
            "n1", "nvidia", "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu",
            (("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB"),), Sharing.NONE, 8, 8, 1000)]
        b._usable_nodes = lambda: {"n1"}  # type: ignore[method-assign]
        b._fit = lambda *_: ""  # type: ignore[method-assign]  # room is not what this test is about
        assert await b.launch(on_a100, gpus) is None
        assert await b.launch(replace(placement(), placement_id=PlacementId("cpu.g1.a")), SPEC) is None
        await b.stop()
        return api, b

    api, _ = asyncio.run(run())
    gang, cpu = (o for o in api.created if o["kind"] == "Job")
    assert gang["metadata"]["annotations"]["federator.io/accelerator-model"] == "NVIDIA-A100-SXM4-80GB"
    assert "federator.io/accelerator-model" not in cpu["metadata"]["annotations"]  # CPU-only work runs on none
    restarted, _ = backend(FakeApi())  # a new agent process: its memory is empty, the member's objects are not
    assert isinstance(restarted, KeepsAcceleratorModels)
    assert restarted.accelerator_model_of(PID) == ""
    feed(restarted, restarted.jobs, ADDED, gang)
    feed(restarted, restarted.jobs, ADDED, cpu)
    assert restarted.accelerator_model_of(PID) == "NVIDIA-A100-SXM4-80GB"
    assert restarted.accelerator_model_of("cpu.g1.a") == ""


def test_a_service_that_loses_a_replica_stays_running_and_says_so() -> None:
    """Seen on a test bed: a node drain left an inference Deployment 1/2 with the replacement Pending, and the
    host kept saying "2 replicas running": the placement cannot go back to Placed, and a new message of the
    same phase was never sent."""
    serve = replace(SPEC, kind=JobKind.INFERENCE)
    b = KubeBackend(FakeApi(), namespace="w")  # type: ignore[arg-type]
    updates: list[tuple[JobPhase, str]] = []
    b._on_update = lambda pid, phase, msg, **_: updates.append((phase, msg))
    b._started = True
    dep = build_workload(placement(), serve, namespace="w")
    tmpl = dep["spec"]["template"]

    def replica(name: str, phase: str, **status: Any) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "w", **tmpl["metadata"]},
                "spec": {"nodeName": "n0"} if phase == "Running" else {}, "status": {"phase": phase, **status}}

    feed(b, b.deployments, ADDED, {**dep, "status": {}})
    feed(b, b.pods, ADDED, replica("r0", "Running"))
    feed(b, b.pods, ADDED, replica("r1", "Running"))
    feed(b, b.deployments, MODIFIED, {**dep, "status": {"readyReplicas": 2}})
    assert updates[-1] == (JobPhase.RUNNING, "2 replicas running")
    feed(b, b.pods, DELETED, replica("r1", "Running"))  # evicted by the drain
    feed(b, b.deployments, MODIFIED, {**dep, "status": {"readyReplicas": 1}})
    unschedulable = "0/5 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) were unschedulable."
    feed(b, b.pods, ADDED, replica("r2", "Pending", conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}]))
    assert updates[-1] == (JobPhase.RUNNING, f"1 of 2 replicas running; 1 pending: {unschedulable}")
    assert b.placements() == {PID: JobPhase.RUNNING}
    feed(b, b.pods, MODIFIED, replica("r2", "Running"))  # uncordoned: the replacement runs
    assert updates[-1] == (JobPhase.RUNNING, "2 replicas running")


def _gang_pod_at(name: str, node: str, **status: Any) -> dict[str, Any]:
    p = gang_pod(name, node, "Running")
    p["status"].update(status)
    return p


EVICTED = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
           "message": "Eviction API: evicting"}
GAVE_UP = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
           "message": "Job has reached the specified backoff limit"}


def _running_gang() -> tuple[FakeApi, KubeBackend, list[tuple[str, JobPhase, str]]]:
    api = FakeApi()
    b, updates = gang_backend(api, _Clock())
    feed(b, b.jobs, ADDED, job_obj({}))
    feed(b, b.pods, ADDED, gang_pod("p0", "n0", "Running"))
    feed(b, b.pods, ADDED, gang_pod("p1", "n1", "Running"))
    assert updates[-1][1] is JobPhase.RUNNING
    return api, b, updates


def test_a_gang_whose_pod_a_drain_evicts_is_stopped_by_the_cluster_not_failed() -> None:
    """Seen on a test bed: `kubectl drain` evicted one pod of a running 2 x 8 gang; the Job (backoffLimit 0)
    failed with "BackoffLimitExceeded: Job has reached the specified backoff limit", the agent reported Failed
    and the job was over for good. The member did it, not the user's code: Cancelled, so the federator queues
    the job again, and the message names the pod, the node and the cause."""
    async def run() -> tuple[FakeApi, list[tuple[str, JobPhase, str]]]:
        api, b, updates = _running_gang()
        feed(b, b.pods, MODIFIED, _gang_pod_at("p1", "n1", conditions=[EVICTED]))
        feed(b, b.pods, DELETED, _gang_pod_at("p1", "n1", phase="Failed", conditions=[EVICTED], containerStatuses=[
            {"name": "main", "state": {"terminated": {"exitCode": 143, "reason": "Error"}}}]))
        feed(b, b.jobs, MODIFIED, job_obj({"failed": 1, "conditions": [GAVE_UP]}))
        await _deleted(api)
        await b.stop()
        return api, updates

    api, updates = asyncio.run(run())
    assert updates[-1] == (PID, JobPhase.CANCELLED,
                           "pod p1 evicted from node n1 (DisruptionTarget: EvictionByEvictionAPI)")
    assert any(d.startswith("jobs/train-abc-g1-a-") for d in api.deleted)  # stopped here: its objects go


def _deleting(pod: dict[str, Any]) -> dict[str, Any]:
    pod["metadata"]["deletionTimestamp"] = "2026-12-05T05:00:00Z"
    return pod


def test_a_gang_whose_pod_the_members_operator_deletes_is_stopped_by_the_cluster_not_failed() -> None:
    """`kubectl delete pod` on the member (no DisruptionTarget): the gang Job failed with BackoffLimitExceeded and
    the agent reported Failed, so the job was over for good for what the member did. Now it is Cancelled, naming
    the pod, and the federator queues the job again."""
    async def run() -> tuple[FakeApi, list[tuple[str, JobPhase, str]]]:
        api, b, updates = _running_gang()
        feed(b, b.pods, MODIFIED, _deleting(_gang_pod_at("p1", "n1")))
        feed(b, b.pods, DELETED, _deleting(_gang_pod_at("p1", "n1", phase="Failed", containerStatuses=[
            {"name": "main", "state": {"terminated": {"exitCode": 143, "reason": "Error"}}}])))
        feed(b, b.jobs, MODIFIED, job_obj({"failed": 1, "conditions": [GAVE_UP]}))
        await _deleted(api)
        await b.stop()
        return api, updates

    api, updates = asyncio.run(run())
    assert updates[-1] == (PID, JobPhase.CANCELLED, "pod p1 on node n1 was deleted in the member cluster")


def test_a_gang_its_own_deadline_ends_still_fails_in_the_jobs_words() -> None:
    """activeDeadlineSeconds (the author's rule): the Job controller deletes the pods it ends; that is no fault of
    the member's."""
    deadline = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline"}

    async def run() -> list[tuple[str, JobPhase, str]]:
        api, b, updates = _running_gang()
        feed(b, b.pods, MODIFIED, _deleting(_gang_pod_at("p0", "n0")))
        feed(b, b.pods, MODIFIED, _deleting(_gang_pod_at("p1", "n1")))
        feed(b, b.jobs, MODIFIED, job_obj({"failed": 2, "conditions": [deadline]}))
        await b.stop()
        return updates

    phase, message = asyncio.run(run())[-1][1:]
    assert phase is JobPhase.FAILED and "deadline" in message, message


def test_a_suspended_gang_whose_pods_went_with_the_suspension_fails_for_its_own_code_later() -> None:
    """Kueue preempting a gang suspends its Job, which deletes its pods; admitted again, a container of the user's
    that then exits non-zero fails it (the suspension's deletions are no fault of the member's)."""
    async def run() -> list[tuple[str, JobPhase, str]]:
        api, b, updates = _running_gang()
        feed(b, b.pods, MODIFIED, _deleting(_gang_pod_at("p1", "n1")))
        suspended = job_obj({"active": 1})
        suspended["spec"]["suspend"] = True
        feed(b, b.jobs, MODIFIED, suspended)
        feed(b, b.jobs, MODIFIED, job_obj({"active": 2}))
        feed(b, b.pods, DELETED, _gang_pod_at("p2", "n1", phase="Failed", containerStatuses=[
            {"name": "main", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]))
        feed(b, b.jobs, MODIFIED, job_obj({"failed": 1, "conditions": [GAVE_UP]}))
        await b.stop()
        return updates

    assert asyncio.run(run())[-1] == (PID, JobPhase.FAILED,
                                      "pod p2 on node n1: container main exited with code 1 (Error)")


def test_a_jobs_own_pod_failure_policy_says_a_disruption_when_the_agent_saw_no_pod() -> None:
    """A Job whose author gave it a podFailurePolicy that fails it on DisruptionTarget: the Job controller's
    words say so, even to an agent that saw no pod of it."""
    async def run() -> list[tuple[str, JobPhase, str]]:
        api, b, updates = _running_gang()
        feed(b, b.jobs, MODIFIED, job_obj({"failed": 1, "conditions": [
            {"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
             "message": "Pod w/p1 has condition DisruptionTarget matching FailJob rule at index 0"}]}))
        await _deleted(api)
        await b.stop()
        return updates

    assert asyncio.run(run())[-1] == (PID, JobPhase.CANCELLED,
                                      "Pod w/p1 has condition DisruptionTarget matching FailJob rule at index 0")


def test_a_users_container_that_exits_non_zero_still_fails_the_gang_naming_the_pod_and_exit_code() -> None:
    async def run() -> tuple[FakeApi, list[tuple[str, JobPhase, str]]]:
        api, b, updates = _running_gang()
        feed(b, b.pods, DELETED, _gang_pod_at("p1", "n1", phase="Failed", containerStatuses=[
            {"name": "main", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]))
        # The Job controller ends the rest of the gang: p0 is killed as it is deleted, a consequence not a cause.
        feed(b, b.pods, DELETED, {**_gang_pod_at("p0", "n0", phase="Failed", containerStatuses=[
            {"name": "main", "state": {"terminated": {"exitCode": 137, "reason": "Error"}}}])})
        feed(b, b.jobs, MODIFIED, job_obj({"failed": 1, "conditions": [GAVE_UP]}))
        await b.stop()
        return api, updates

    api, updates = asyncio.run(run())
    assert updates[-1] == (PID, JobPhase.FAILED, "pod p1 on node n1: container main exited with code 1 (Error)")
    assert not api.deleted  # failed: kept for the user to read its logs (the Job's TTL removes it)


async def _reported(updates: list[tuple[str, JobPhase, str]], seconds: float = 5.0) -> None:
    """Wait for a terminal report (a failed workload is judged once its pods are read, in a task)."""
    for _ in range(int(seconds / 0.05)):
        if updates and updates[-1][1].is_terminal:
            return
        await asyncio.sleep(0.05)


def test_a_replica_that_crashed_fails_the_gang_though_the_watch_saw_only_its_sibling_deleted() -> None:
    """F1, as the API server really sends it: the crashed pod leaves the active-pod watch with a DELETED event
    carrying its state before (Running); the first fault the watch shows is the Job controller deleting the
    other replica. That read as the member's doing (Cancelled, re-queued without end); the pods read once the
    Job failed say a container exited 137 (OOMKilled): Failed, naming it."""
    async def run() -> tuple[FakeApi, list[tuple[str, JobPhase, str]]]:
        api, b, updates = _running_gang()
        crashed = _gang_pod_at("p1", "n1", phase="Failed", containerStatuses=[
            {"name": "main", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                      "finishedAt": "2026-12-05T05:00:00Z"}}}])
        api.pods.append(crashed)
        feed(b, b.pods, DELETED, _gang_pod_at("p1", "n1"))  # the watch's words: Running, as it left
        sibling = _deleting(_gang_pod_at("p0", "n0"))
        sibling["metadata"]["deletionGracePeriodSeconds"] = 0
        api.pods.append(sibling)
        feed(b, b.pods, MODIFIED, sibling)
        feed(b, b.jobs, MODIFIED, job_obj({"failed": 1, "conditions": [GAVE_UP]}))
        await _reported(updates)
        await b.stop()
        return api, updates

    api, updates = asyncio.run(run())
    assert updates[-1] == (PID, JobPhase.FAILED, "pod p1 on node n1: container main exited with code 137 (OOMKilled)")
    assert api.pod_lists == ["federator.io/placement-id=train-abc.g1.a"]  # one list, by the placement's label
    assert not api.deleted  # failed: kept for the user to read its logs


def test_a_gang_whose_replicas_all_failed_at_once_names_a_pod_and_exit_code_not_the_backoff_limit() -> None:
    async def run() -> list[tuple[str, JobPhase, str]]:
        api, b, updates = _running_gang()
        for name, node in (("p0", "n0"), ("p1", "n1")):
            api.pods.append(_gang_pod_at(name, node, phase="Failed", containerStatuses=[
                {"name": "main", "state": {"terminated": {"exitCode": 139, "reason": "Error"}}}]))
            feed(b, b.pods, DELETED, _gang_pod_at(name, node))
        feed(b, b.jobs, MODIFIED, job_obj({"failed": 2, "conditions": [GAVE_UP]}))
        await _reported(updates)
        await b.stop()
        return updates

    assert asyncio.run(run())[-1] == (PID, JobPhase.FAILED,
                                      "pod p0 on node n0: container main exited with code 139 (Error)")


def test_cancel_deletes_the_rendezvous_service_of_a_gang_named_with_a_leading_digit() -> None:
    """Such a gang's Job and Service are named as RFC 1035 labels ("p-70b-..."); the cancel deleted the Service
    by the old name only, and left it to the member's garbage collector."""
    pid = "70b-sft-abc.g1.a"

    async def run() -> FakeApi:
        api = FakeApi()
        b, _ = backend(api)
        assert await b.launch(Placement(PlacementId(pid), JobId("70b-sft-abc"), "a", "east", 2, "", 1), SPEC) is None
        job, service = api.created
        assert job["metadata"]["name"] == service["metadata"]["name"]
        await b.cancel(pid)
        await _deleted(api)
        await b.stop()
        return api

    api = asyncio.run(run())
    assert any(d.startswith("services/p-70b-sft-abc-g1-a-") for d in api.deleted), api.deleted


def test_the_launch_seal_is_written_on_the_workload_and_read_back_by_a_restarted_agent() -> None:
    """A placement's Launch.seal outlives its agent: the federator adopts it after a restore of its store only with
    the seal said back (server/seals.py; agent/launch_seals.py)."""
    from federator.agent.launch_seals import KeepsLaunchSeals

    async def run() -> FakeApi:
        api = FakeApi()
        b, _ = backend(api)
        assert isinstance(b, KeepsLaunchSeals)
        b.keep_launch_seal(PID, "s1.0123abcd.SEAL")
        assert await b.launch(placement(), SPEC) is None
        assert await b.launch(replace(placement(), placement_id=PlacementId("old.g1.a")), SPEC) is None  # none kept
        await b.stop()
        return api

    api = asyncio.run(run())
    sealed, unsealed = (o for o in api.created if o["kind"] == "Job")
    assert sealed["metadata"]["annotations"]["federator.io/launch-seal"] == "s1.0123abcd.SEAL"
    assert "federator.io/launch-seal" not in unsealed["metadata"]["annotations"]
    restarted, _ = backend(FakeApi())  # a new agent process: its memory is empty, the member's objects are not
    assert restarted.launch_seal_of(PID) == ""
    feed(restarted, restarted.jobs, ADDED, sealed)
    feed(restarted, restarted.jobs, ADDED, unsealed)
    assert restarted.launch_seal_of(PID) == "s1.0123abcd.SEAL"
    assert restarted.launch_seal_of("old.g1.a") == ""


def _merged(obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`obj` with a JSON merge patch applied, as the API server does (no null deletes needed here)."""
    out = dict(obj)
    for key, value in patch.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def test_a_re_sent_launchs_seal_is_written_over_the_kept_one_for_a_restarted_agent() -> None:
    """agent.proto, Launch.seal: a Launch re-sent for a placement held here carries the seal of the federator's key
    now (rotated since: security.md, "The seal key"). The workload's annotation is patched to it, its drift record
    with it, so a restarted agent says that one back (not the first Launch's, which the federator may no longer
    verify) and no drift guard puts the old one back."""
    class PatchingApi(FakeApi):
        def __init__(self) -> None:
            super().__init__()
            self.patches: list[tuple[str, str, str | None, dict[str, Any]]] = []

        def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
                  subresource: str | None = None) -> dict[str, Any]:
            self.patches.append((res.plural, name, namespace, body))
            return {}

    old, new = "s1.0123abcd.FIRST", "s1.4567cdef.ROTATED"

    async def run() -> tuple[PatchingApi, dict[str, Any], KubeBackend]:
        api = PatchingApi()
        b, _ = backend(api)
        b.keep_launch_seal(PID, old)
        assert await b.launch(placement(), SPEC) is None
        assert [o["kind"] for o in api.created] == ["Job", "Service"]  # the gang's rendezvous Service too
        live = {**api.created[0], "metadata": {**api.created[0]["metadata"], "uid": "uid-1"}}
        feed(b, b.jobs, ADDED, live)
        b.keep_launch_seal(PID, new)  # the Launch re-sent at the agent's reconnect, under the rotated key
        assert await b.launch(placement(), SPEC) is None
        assert [o["kind"] for o in api.created] == ["Job", "Service"]  # nothing created again
        assert [(p[0], p[1], p[2]) for p in api.patches] == [("jobs", live["metadata"]["name"], "w")]
        live = _merged(live, api.patches[0][3])
        assert live["metadata"]["uid"] == "uid-1"  # a precondition: never another object of that name
        feed(b, b.jobs, MODIFIED, live)
        assert b.drift.check(PID, live) is None  # the agent's own change, not drift
        b.keep_launch_seal(PID, new)  # the same seal said again: nothing to write
        assert await b.launch(placement(), SPEC) is None
        assert len(api.patches) == 1
        await b.stop()
        return api, live, b

    api, live, _ = asyncio.run(run())
    assert live["metadata"]["annotations"]["federator.io/launch-seal"] == new
    restarted, _ = backend(PatchingApi())  # a new agent process: the member's object is all it has
    feed(restarted, restarted.jobs, ADDED, live)
    assert restarted.launch_seal_of(PID) == new
    assert restarted.drift.check(PID, live) is None  # the record says the new seal too
