"""An agent's claim on its namespace for its federation (backends/kube/namespace_claim.py): who may write the Lease
and when, on the agent's own clock; what a refused agent says; a holder that finds its claim taken over stops; (the
agent then ends: tests/agent/test_agent_namespace_claim.py). The real API server:
tests/kube/test_kube_namespace_claim_testbed.py."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from typing import Any

import pytest

from federator.backends.kube.api import ConflictError, ForbiddenError, KubeError, NotFoundError
from federator.backends.kube.leader import Observed
from federator.backends.kube.namespace_claim import (
    ClaimState,
    NamespaceClaim,
    NamespaceTaken,
    decide,
    lease_name,
    refusal,
)

NS, US, THEM = "federator-workloads", "fed.national.example:7070", "fed.regional.example:7070"
META = {"name": "federator-agent-member-a", "namespace": NS}


def held_by(holder: str | None, *, renew: str = "2026-01-01T00:00:00.000000Z", seconds: int = 600,
            transitions: int = 0) -> dict[str, Any]:
    return {"metadata": {"name": META["name"], "namespace": NS, "resourceVersion": "7",
                         "annotations": {"federator.io/cluster": "member-a", "federator.io/agent-host": "agent-7f"}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds, "renewTime": renew,
                     "acquireTime": "2026-01-01T00:00:00.000000Z", "leaseTransitions": transitions}}


def test_a_free_namespace_is_claimed_and_the_claim_names_the_federation() -> None:
    body = decide(None, federation=US, observed=Observed(), now_mono=0, now_wall=1e9, seconds=600, meta=META)
    assert body is not None and body["spec"]["holderIdentity"] == US
    assert body["spec"]["leaseDurationSeconds"] == 600 and body["spec"]["leaseTransitions"] == 0
    assert "resourceVersion" not in body["metadata"]


def test_another_federations_claim_holds_while_renewed_and_lapses_after_its_own_duration_on_our_clock() -> None:
    seen = Observed()
    assert decide(held_by(THEM), federation=US, observed=seen, now_mono=100, now_wall=0, seconds=600, meta=META) \
        is None
    assert decide(held_by(THEM), federation=US, observed=seen, now_mono=699, now_wall=0, seconds=600, meta=META) \
        is None
    renewed = held_by(THEM, renew="2026-01-01T00:10:00.000000Z")  # the record changed: our clock starts again
    assert decide(renewed, federation=US, observed=seen, now_mono=701, now_wall=0, seconds=600, meta=META) is None
    assert decide(renewed, federation=US, observed=seen, now_mono=1300, now_wall=0, seconds=600, meta=META) is None
    body = decide(renewed, federation=US, observed=seen, now_mono=1302, now_wall=0, seconds=600, meta=META)
    assert body is not None and body["spec"]["holderIdentity"] == US and body["spec"]["leaseTransitions"] == 1
    assert body["metadata"]["resourceVersion"] == "7"  # a PUT on what was read: two takers cannot both win
    # The holder's word, not ours, says how long its claim lasts.
    short = Observed()
    assert decide(held_by(THEM, seconds=5), federation=US, observed=short, now_mono=0, now_wall=0, seconds=600,
                  meta=META) is None
    assert decide(held_by(THEM, seconds=5), federation=US, observed=short, now_mono=6, now_wall=0, seconds=600,
                  meta=META) is not None


def test_the_same_federation_takes_its_claim_at_once_whoever_wrote_it_last() -> None:
    """A restarted agent, the next pod of a rollout, a second replica: the claim is the federation's."""
    body = decide(held_by(US, transitions=3), federation=US, observed=Observed(), now_mono=0, now_wall=1e9,
                  seconds=600, meta=META)
    assert body is not None
    assert body["spec"]["acquireTime"] == "2026-01-01T00:00:00.000000Z" and body["spec"]["leaseTransitions"] == 3


def test_the_refusal_names_the_namespace_the_other_federation_and_the_fix() -> None:
    words = refusal(namespace=NS, name=lease_name("member-a"), lease=held_by(THEM), federation=US, seconds=600)
    assert words.startswith(f"namespace {NS} is claimed by another federation's agent (Lease "
                            f"{NS}/federator-agent-member-a: federator {THEM}, cluster member-a, host agent-7f")
    assert f"this agent reports to {US}" in words and "give it a --namespace of its own" in words
    assert f"kubectl -n {NS} delete lease federator-agent-member-a" in words and "lapses 600s after" in words


class Leases:
    """Leases in memory, written as an API server does (a PUT on a stale resourceVersion conflicts)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.refuse: KubeError | None = None
        self.version = 0

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        if self.refuse is not None:
            raise self.refuse
        if name not in self.objects:
            raise NotFoundError(404, f'leases "{name}" not found')
        return copy.deepcopy(self.objects[name])

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        if body["metadata"]["name"] in self.objects:
            raise ConflictError(409, "already exists")
        return self._store(body)

    def replace(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        if body["metadata"].get("resourceVersion") != self.objects[name]["metadata"]["resourceVersion"]:
            raise ConflictError(409, "the object has been modified")
        return self._store(body)

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.objects[obj["metadata"]["name"]] = obj
        return copy.deepcopy(obj)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.each: list[Any] = []  # called after each sleep: what the world does meanwhile

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        for step in self.each:
            step()


def claim(api: Leases, clock: Clock, federation: str, said: list[tuple[ClaimState, str]]) -> NamespaceClaim:
    c = NamespaceClaim(api, namespace=NS, cluster="member-a", federation=federation, seconds=600, retry=30,  # type: ignore[arg-type]
                       monotonic=lambda: clock.now, wall=lambda: 1e9 + clock.now, sleep=clock.sleep)
    c.said = lambda state, problem: said.append((state, problem))
    return c


def test_a_refused_agent_waits_says_so_once_and_takes_the_claim_once_it_has_lapsed(
        caplog: pytest.LogCaptureFixture) -> None:
    api, clock = Leases(), Clock()
    theirs: list[tuple[ClaimState, str]] = []
    holder = claim(api, clock, THEM, theirs)
    asyncio.run(holder.take())
    assert theirs == [(ClaimState.HELD, "")]
    renewing = [True]
    clock.each.append(lambda: renewing[0] and holder.round())  # the regional agent renews every 30 s
    ours: list[tuple[ClaimState, str]] = []
    waiting = claim(api, clock, US, ours)

    async def main() -> None:
        task = asyncio.create_task(waiting.take())
        while clock.sleeps < 40:  # 20 minutes of renewals: it keeps waiting
            await asyncio.sleep(0)
            assert not task.done()
        renewing[0] = False  # the regional federation is removed: nothing renews its claim
        await asyncio.wait_for(task, 10)

    with caplog.at_level(logging.INFO, "federator.agent.kube"):
        asyncio.run(main())
    assert [s for s, _ in ours] == [ClaimState.REFUSED, ClaimState.HELD]
    assert ours[0][1].startswith(f"namespace {NS} is claimed by another federation's agent") and ours[1][1] == ""
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1  # once per holder, not per look
    assert "took namespace federator-workloads over from federator fed.regional.example:7070" in caplog.text
    lease = api.objects["federator-agent-member-a"]
    assert lease["spec"]["holderIdentity"] == US and lease["spec"]["leaseTransitions"] == 1
    assert lease["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "federator"}  # the write guard admits it
    # The old holder, back: its claim is taken, and it stops.
    with pytest.raises(NamespaceTaken, match="could not renew the claim for 600s"):
        asyncio.run(holder.keep())
    assert theirs[-1][0] is ClaimState.REFUSED


@pytest.mark.parametrize(("refuse", "words"), [
    (ForbiddenError(403, 'leases is forbidden: User "system:serviceaccount:a:b" cannot get resource "leases"'),
     "deploy/kubernetes/rbac-agent.yaml's Role federator-agent-namespace-claim"),
    (None, "namespace federator-workloads does not exist"),
], ids=["no-lease-rbac", "no-namespace"])
def test_an_agent_that_cannot_write_its_claim_runs_unclaimed_and_says_why(
        refuse: KubeError | None, words: str, caplog: pytest.LogCaptureFixture) -> None:
    api, clock = Leases(), Clock()
    api.refuse = refuse
    if refuse is None:  # the create lands in no namespace
        api.create = lambda *a, **k: (_ for _ in ()).throw(NotFoundError(404, 'namespaces "x" not found'))  # type: ignore[method-assign]
    said: list[tuple[ClaimState, str]] = []
    with caplog.at_level(logging.WARNING, "federator.agent.kube"):
        asyncio.run(claim(api, clock, US, said).take())
    assert [s for s, _ in said] == [ClaimState.UNCHECKED] and words in said[0][1] and words in caplog.text


@pytest.mark.parametrize(("granted", "words"), [
    (True, "This agent held it until it could not renew the claim for 600s; it stops acting there"),
    (False, "This agent ran there unclaimed (it could not write the Lease); it stops acting there"),
], ids=["granted-then-taken", "never-granted"])
def test_an_unchecked_claim_is_taken_once_granted_and_a_claim_found_taken_stops_the_agent(
        granted: bool, words: str) -> None:
    """RBAC from before 0.14.0: the agent runs unclaimed and keeps trying; once granted it holds the claim. Whatever
    it had, finding another federation's live claim on its namespace ends it, saying which case it was."""
    api, clock = Leases(), Clock()
    api.refuse = ForbiddenError(403, "leases is forbidden")
    said: list[tuple[ClaimState, str]] = []
    ours = claim(api, clock, US, said)
    asyncio.run(ours.take())
    theirs = {"federator-agent-member-a": held_by(THEM)}
    steps = iter([lambda: setattr(api, "refuse", None) if granted else None,
                  lambda: setattr(api, "refuse", None) or api.objects.update(theirs)])
    clock.each.append(lambda: next(steps, lambda: None)())
    with pytest.raises(NamespaceTaken, match=re.escape(words)):
        asyncio.run(ours.keep())
    assert [s for s, _ in said] == ([ClaimState.UNCHECKED, ClaimState.HELD, ClaimState.REFUSED] if granted else
                                    [ClaimState.UNCHECKED, ClaimState.REFUSED])


def test_an_api_server_that_does_not_answer_at_start_fails_the_start_naming_the_claim() -> None:
    api, clock = Leases(), Clock()
    api.refuse = KubeError(0, "connection refused")
    with pytest.raises(KubeError, match="claiming namespace federator-workloads \\(Lease federator-agent-member-a\\): "
                                        "connection refused"):
        asyncio.run(claim(api, clock, US, []).take())
