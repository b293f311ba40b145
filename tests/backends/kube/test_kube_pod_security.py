"""The member's own pod security level, held by its agent: a placement whose rendered workload breaks it is
refused before anything is created, naming the field and the agent flag; the workloads namespace's Pod Security
Admission label is read against it at start."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest

from federator.backends.kube.api import ForbiddenError
from federator.backends.kube.backend import KubeBackend
from federator.backends.kube.namespace_level import namespace_warnings, read_namespace_warnings
from federator.model import AcceleratorAlternative, JobId, JobKind, JobSpec, Placement, PlacementId, Resources
from federator.security.podsecurity import PodSecurity, PodSecurityLevel

from kube_fakes import RecordingApi, started_backend

PID = "train-abc.g1.a"



def placement(alternative: int = 0) -> Placement:
    return replace(Placement(PlacementId(PID), JobId("train-abc"), "member-a", "east", 1, "", 1),
                   alternative=alternative)


def spec(**security: Any) -> JobSpec:
    template = {"spec": {"containers": [{"name": "main", "image": "llm:1", "securityContext": security}]}}
    return JobSpec(name="train", kind=JobKind.INFERENCE, replicas=1, resources=Resources(cpu_milli=1000),
                   pod_template_json=json.dumps(template))


def backend(api: RecordingApi, policy: PodSecurity | None = None) -> KubeBackend:
    return started_backend(api, pod_security=policy)


def test_a_privileged_container_is_refused_by_the_members_baseline_and_nothing_is_created() -> None:
    """The federator may run at privileged, or have stored the job before its level was raised: the member's
    agent holds its own level whatever the federator's."""
    api = RecordingApi()
    why = asyncio.run(backend(api).launch(placement(), spec(privileged=True)))
    assert api.created == []
    assert why == ('member-a refuses by its pod security level baseline: spec.template.spec.containers[0].'
                   'securityContext.privileged: not allowed under pod security "baseline"; its operator would '
                   "admit it with federator agent --pod-security privileged")


def test_a_capability_is_refused_naming_the_agent_flag_and_launched_once_the_member_allows_it() -> None:
    api = RecordingApi()
    ipc = spec(capabilities={"add": ["IPC_LOCK"]})
    why = asyncio.run(backend(api).launch(placement(), ipc))
    assert api.created == []
    assert why is not None and "spec.template.spec.containers[0].securityContext.capabilities.add[0]" in why
    assert "federator agent --allow-capability IPC_LOCK" in why
    allowing = PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK"}))
    assert asyncio.run(backend(api, allowing).launch(placement(), ipc)) is None
    assert [o["kind"] for o in api.created] == ["Deployment"]


def test_the_chosen_alternatives_template_is_checked_as_rendered_over_the_jobs() -> None:
    over = json.dumps({"spec": {"containers": [{"securityContext": {"privileged": True}}]}})
    job = replace(spec(), accelerators=(AcceleratorAlternative(0, pod_template_json=""),
                                        AcceleratorAlternative(0, pod_template_json=over)))
    api = RecordingApi()
    assert asyncio.run(backend(api).launch(placement(alternative=0), job)) is None
    why = asyncio.run(backend(api).launch(replace(placement(alternative=1), placement_id=PlacementId("p2")), job))
    assert why is not None and "securityContext.privileged" in why
    assert len(api.created) == 1  # the first alternative's only


def test_restricted_refuses_what_the_agent_itself_would_add_without_a_security_context() -> None:
    """The check reads the rendered workload: a job without containers gets the agent's default one."""
    api = RecordingApi()
    bare = JobSpec(name="train", kind=JobKind.INFERENCE, replicas=1, resources=Resources(cpu_milli=1000))
    why = asyncio.run(backend(api, PodSecurity(level=PodSecurityLevel.RESTRICTED)).launch(placement(), bare))
    assert api.created == [] and why is not None
    assert "allowPrivilegeEscalation: must be false" in why
    assert why.endswith("federator agent --pod-security baseline")


def namespace(**labels: str) -> dict[str, Any]:
    return {"metadata": {"name": "federator-workloads", "labels": labels}}


ENFORCE = "pod-security.kubernetes.io/enforce"


@pytest.mark.parametrize(("labels", "policy", "said"), [
    ({ENFORCE: "baseline"}, PodSecurity(), None),
    ({ENFORCE: "restricted"}, PodSecurity(level=PodSecurityLevel.RESTRICTED), None),
    ({ENFORCE: "privileged"}, PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK"})), None),
    ({}, PodSecurity(), "has no pod-security.kubernetes.io/enforce label"),
    ({ENFORCE: "privileged"}, PodSecurity(), "enforces pod security privileged, weaker than this agent's baseline"),
    ({ENFORCE: "baseline"}, PodSecurity(level=PodSecurityLevel.RESTRICTED), "weaker than this agent's restricted"),
    ({ENFORCE: "baseline"}, PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK"})),
     "stricter than this agent's baseline with IPC_LOCK"),
    ({ENFORCE: "strict"}, PodSecurity(), "'strict' is not a level the API server knows"),
], ids=["baseline", "restricted", "allowances-privileged", "absent", "weaker", "weaker-than-restricted",
        "stricter-than-allowances", "unknown"])
def test_the_namespace_label_is_read_against_the_agents_level(labels: dict[str, str], policy: PodSecurity,
                                                              said: str | None) -> None:
    warnings = namespace_warnings(namespace(**labels), policy)
    if said is None:
        assert warnings == []
    else:
        (warning,) = warnings
        assert said in warning
        assert "kubectl label namespace federator-workloads --overwrite pod-security.kubernetes.io/enforce=" in warning


def test_an_allowance_beyond_the_level_asks_for_privileged_and_says_why() -> None:
    (warning,) = namespace_warnings(namespace(), PodSecurity(allow_host_network=True))
    assert "pod-security.kubernetes.io/enforce=privileged" in warning
    assert "the agent's own check holds the rest" in warning


def test_a_namespace_the_agent_may_not_read_is_a_warning_not_a_stop() -> None:
    class Forbidding:
        def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
            raise ForbiddenError(403, 'namespaces "w" is forbidden', reason="Forbidden")

    (warning,) = read_namespace_warnings(Forbidding(), "w", PodSecurity())  # type: ignore[arg-type]
    assert "its labels could not be read" in warning and "own check (baseline) still holds" in warning


def test_the_agent_warns_at_start_of_a_workloads_namespace_weaker_than_its_level(
        caplog: pytest.LogCaptureFixture) -> None:
    """The start reads the namespace's Pod Security Admission label against the agent's level, before anything
    else can fail (here API discovery, which this fake does not serve)."""
    class Api:
        server = "fake"

        def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
            assert (res.plural, name) == ("namespaces", "w")
            return {"metadata": {"name": "w", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}

        def discover(self, *_: Any) -> Any:
            raise ForbiddenError(403, "discovery is forbidden", reason="Forbidden")

        def __getattr__(self, name: str) -> Any:
            raise ForbiddenError(403, f"{name} is forbidden", reason="Forbidden")

    b = KubeBackend(Api(), namespace="w", cluster="member-a",  # type: ignore[arg-type]
                    pod_security=PodSecurity(PodSecurityLevel.RESTRICTED))
    with caplog.at_level("WARNING"), pytest.raises(Exception, match="forbidden"):
        asyncio.run(b.start(lambda *_, **__: None))
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("namespace w enforces pod security baseline, weaker than this agent's restricted")
               for m in warned), warned
    # and that every tenant shares it: the operator hears of the flag that keeps them apart
    assert any(m.startswith("every organisation's placements run in the one namespace w") and
               "--namespace-per-queue" in m for m in warned), warned
