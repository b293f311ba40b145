"""A simulated member holds a job's pod templates to its agent's level as a real member does: the refusal
reaches the federator as an Ack, and the simulated nodes stay free."""

from __future__ import annotations

import asyncio

from agent_support import FLEET, ScriptedFederator, kinds, launch, with_agent

from federator.agent.agent import Agent
from federator.backends.sim.runtime import SimBackend
from federator.jobfile import parse_job
from federator.model import JobId, Placement, PlacementId
from federator.security.podsecurity import PodSecurity, PodSecurityLevel

PRIVILEGED_JOB = parse_job({
    "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "j"},
    "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 4},
             "template": {"spec": {"containers": [{"name": "m", "image": "x",
                                                   "securityContext": {"privileged": True}}]}}}})


def test_a_simulated_member_refuses_what_its_level_does_not_admit_and_binds_nothing() -> None:
    fed = ScriptedFederator([[launch("j.g1.c-1", spec=PRIVILEGED_JOB)]])
    backend = SimBackend(FLEET["c-1"], pod_security=PodSecurity())
    free = backend.capacity().free_accelerators
    said: list[str] = []

    async def body(agent: Agent) -> None:
        await fed.until(lambda: "ack" in kinds(fed.sessions[0]))
        (ack,) = [m.ack for m in fed.sessions[0] if m.WhichOneof("body") == "ack"]
        assert not ack.ok
        said.append(ack.message)

    asyncio.run(with_agent(fed, body, backend))
    assert said == ['c-1 refuses by its pod security level baseline: spec.template.spec.containers[0].'
                    'securityContext.privileged: not allowed under pod security "baseline"; its operator would '
                    "admit it with federator agent --pod-security privileged"]
    assert backend.capacity().free_accelerators == free


def test_a_simulated_member_without_a_level_launches_anything_as_before() -> None:
    backend = SimBackend(FLEET["c-1"])
    privileged = SimBackend(FLEET["c-1"], pod_security=PodSecurity(level=PodSecurityLevel.PRIVILEGED))
    placement = Placement(PlacementId("j.g1.c-1"), JobId("j"), "c-1", "r", 1, "H100", 1)

    async def run() -> list[str | None]:
        said = [await backend.launch(placement, PRIVILEGED_JOB), await privileged.launch(placement, PRIVILEGED_JOB)]
        await backend.stop()
        await privileged.stop()
        return said

    assert asyncio.run(run()) == [None, None]

