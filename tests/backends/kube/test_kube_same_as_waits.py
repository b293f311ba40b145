"""A FederatedJob's spec.clusters.sameAs names jobs of its own namespace, as spec.dependsOn does (new60b N7).

Naming a job only another namespace holds was taken as found by the wait (its visibility was checked for dependsOn
keys only); Submit then answered NOT_FOUND, and the object was judged again at once, for ever: no status, no Event,
the federator busy. It waits now as a name no FederatedJob of its namespace has (and is refused once past the bound).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kube_fakes import FlakyApi, controller, federated_job

TRAIN = {"kind": "training", "resources": {"cpu": "1"}}


def test_same_as_naming_another_namespaces_job_waits_saying_so_and_is_not_judged_again_at_once() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            ctl.chains.missing_seconds = float("inf")  # the fake API sets no creationTimestamp
            learner = federated_job(api, "learner", TRAIN, namespace="default")
            await ctl.reconcile("ADDED", learner)
            await ctl.reconcile("MODIFIED", api.objects[("default", "learner")])
            assert fed.jobs.named("learner")
            judged: list[str] = []
            requeue = ctl._requeue

            def counted(*args: Any, **kwargs: Any) -> None:
                judged.append(str(args[:2]))
                requeue(*args, **kwargs)
            ctl._requeue = counted
            rollout = federated_job(api, "rollout", {**TRAIN, "clusters": {"sameAs": ["learner"]}}, namespace="team-b")
            await ctl.reconcile("ADDED", rollout)
            await ctl.reconcile("MODIFIED", api.objects[("team-b", "rollout")])
            for _ in range(50):
                await asyncio.sleep(0.01)
            status = api.objects[("team-b", "rollout")].get("status") or {}
            assert status.get("phase") == "Pending", status
            assert "learner" in status.get("message", "") and "does not exist" in status["message"], status
            assert not [j for j in fed.jobs.values() if j.spec.name == "rollout"]
            assert len(judged) < 5, judged  # not judged again at once, over and over

    asyncio.run(main())


def test_same_as_naming_the_job_itself_is_refused_naming_the_field_not_as_a_dependency_cycle() -> None:
    """new60b N8: it was refused as `spec.dependsOn.jobs: a cycle, kx6 -> kx6`, a field the object did not have."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            ctl.chains.missing_seconds = float("inf")
            me = federated_job(api, "kx6", {**TRAIN, "clusters": {"sameAs": ["prep", "kx6"]}}, namespace="default")
            await ctl.reconcile("ADDED", me)
            await ctl.reconcile("MODIFIED", api.objects[("default", "kx6")])
            for _ in range(50):
                if (api.objects[("default", "kx6")].get("status") or {}).get("phase") == "Failed":
                    break
                await asyncio.sleep(0.01)
            status = api.objects[("default", "kx6")].get("status") or {}
            assert status.get("phase") == "Failed", status
            assert status["message"].startswith("spec.clusters.sameAs[1]: names this FederatedJob, kx6"), status
            assert not fed.jobs

    asyncio.run(main())


async def _status_of(api: FlakyApi, fed: Any, name: str, phase: str) -> dict[str, Any]:
    """The object's status once it reads `phase` (the store's writes flushed as the federator's writer would)."""
    for _ in range(100):
        fed.journal.drain()
        fed.store.flush()
        status = api.objects[("default", name)].get("status") or {}
        if status.get("phase") == phase:
            return dict(status)
        await asyncio.sleep(0.01)
    return dict(api.objects[("default", name)].get("status") or {})


def test_same_as_naming_a_job_that_ended_fails_the_federatedjob_with_a_status_saying_so() -> None:
    """new60b N1: it waited Pending for ever, "it holds none yet" of an ended learner; now it fails as an afterstart
    dependent does, and the FederatedJob's status says so."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            for name, spec in (("learner", TRAIN), ("rollout", {**TRAIN, "clusters": {"sameAs": ["learner"]}})):
                await ctl.reconcile("ADDED", federated_job(api, name, spec, namespace="default"))
                await ctl.reconcile("MODIFIED", api.objects[("default", name)])
            learner = fed.jobs.named("learner")[0]
            fed.cancel(learner.job_id)  # no member: it never ran
            status = await _status_of(api, fed, "rollout", "Failed")
            assert status.get("phase") == "Failed", status
            assert status["message"] == (f"DependencyNeverSatisfied: job {learner.job_id} ended Cancelled, so it "
                                         "will never hold a placement to share (spec.clusters.sameAs[0]); submit "
                                         "the job again naming a live one"), status

    asyncio.run(main())


def test_a_name_no_federatedjob_can_ever_have_is_refused_at_once_naming_its_field() -> None:
    """new60b: `sameAs: [Bad_Name]` (not a lower-case DNS name) waited the whole 600 s bound as a name to appear."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            ctl.chains.missing_seconds = float("inf")  # without the check it would wait for ever here
            cases = {"kx7": ({"clusters": {"sameAs": ["Bad_Name"]}}, "spec.clusters.sameAs[0]: 'Bad_Name'"),
                     "kx8": ({"dependsOn": {"jobs": ["prep", "a_b"]}}, "spec.dependsOn.jobs[1]: 'a_b'")}
            for name, (extra, _) in cases.items():
                await ctl.reconcile("ADDED", federated_job(api, name, {**TRAIN, **extra}, namespace="default"))
                await ctl.reconcile("MODIFIED", api.objects[("default", name)])
            for name, (_, start) in cases.items():
                status = await _status_of(api, fed, name, "Failed")
                assert status.get("phase") == "Failed", status
                assert status["message"].startswith(f"{start} is not a FederatedJob name (lower-case letters, digits, "
                                                     "'-' and '.'"), status
                assert "can ever exist; fix the name" in status["message"]
            assert not fed.jobs

    asyncio.run(main())
