"""Kubernetes mode: the FederatedJob controller's status writes of a known job, and its scale, awaited off the loop.

The controller wrote a status note (a refused scale, metadata it does not follow: accepted.py), an observed
generation (a changed TTL), a job's status.accepted (a job accepted before 0.12.0) and a `kubectl scale` with the
blocking `GroupCommit.write` / `Federator.scale`: each a FederatedJob status write, an HTTP round trip to the API
server, holding the event loop and every agent stream, Watch and Submit with it. Now each is awaited. A store write
the test holds stands for a slow API server; what is checked is *order*, never time: the loop runs the test's own
coroutine while the write is held, and what the write promises holds once it lands. Also what may happen meanwhile:
the job ends while its scale is stored (refused, said, the user's count never set back), and the API server is
away for a note's write (tried again, and written then, though nothing is new by then).
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Iterable
from typing import Any

from federator.model import Job, JobPhase
from federator.store.errors import StoreUnavailable

from builders import cluster
from kube_fakes import Events, FlakyApi, controller, federated_job
from support import cancels_sent

A_WHILE = 20.0  # a guard against a hang (the old code held the loop until this ran out): no assertion reads time
KEY = ("research", "chat")
SERVE = {"kind": "inference", "replicas": 2, "resources": {"cpu": "1"}}


class Gate:
    """Holds the store's next write that `holding` picks until the test lets it go (a slow API server), or fails it
    StoreUnavailable (`fail`: an API server away); `events` says, in order, what happened."""

    def __init__(self, fed: Any, holding: Callable[[list[Job]], bool] = lambda jobs: True, *,
                 fail: bool = False) -> None:
        self.entered, self.release, self.events = threading.Event(), threading.Event(), list[str]()
        self.armed = True
        real = fed.journal.store.put

        def put(jobs: Iterable[Job]) -> None:
            jobs = list(jobs)
            if self.armed and holding(jobs):
                self.armed = False
                if fail:
                    raise StoreUnavailable("the Kubernetes API server is away")
                self.entered.set()
                self.events.append("write held")
                self.events.append("write let go" if self.release.wait(A_WHILE) else "write timed out")
            real(jobs)

        fed.journal.store.put = put

    async def served_while_held(self) -> None:
        """The held write has begun, and this coroutine runs meanwhile (the loop is not held)."""
        try:
            assert await asyncio.to_thread(self.entered.wait, A_WHILE)
            self.events.append("loop served")
        finally:
            self.release.set()


async def placed(api: FlakyApi, ctl: Any, fed: Any, spec: dict[str, Any]) -> tuple[Job, Any, str]:
    """A FederatedJob submitted and placed on member a, its write drained: the job, a's record, its placement."""
    await ctl.reconcile("ADDED", federated_job(api, KEY[1], spec))
    rec = fed.connect(cluster="a", region="east", labels={})
    fed.report(rec, cluster("a", "east").capacity)
    fed.schedule_once()
    (job,) = fed.jobs.values()
    (pid,) = [p.placement_id for p in job.placements]
    fed.job_update(rec, pid, JobPhase.RUNNING, "")
    await asyncio.to_thread(fed.journal.drain)
    return job, rec, pid


def edited(api: FlakyApi, *, spec: dict[str, Any] | None = None, annotations: dict[str, str] | None = None,
           status: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The object after a user's edit: a spec change is a new generation, metadata is not."""
    obj = api.objects[KEY]
    if spec:
        obj["spec"].update(spec)
        obj["metadata"]["generation"] += 1
    obj["metadata"].setdefault("annotations", {}).update(annotations or {})
    if status is not None:
        status(obj["status"])
    return copy.deepcopy(obj)


def accepted_condition(api: FlakyApi) -> tuple[str, str] | None:
    """The status's condition Accepted (None: not written yet, the job is as accepted)."""
    found = [c for c in api.objects[KEY]["status"]["conditions"] if c["type"] == "Accepted"]
    return (found[0]["status"], found[0]["reason"]) if found else None


async def held_reconcile(ctl: Any, gate: Gate, obj: dict[str, Any]) -> None:
    reconcile = asyncio.ensure_future(ctl.reconcile("MODIFIED", obj))
    await gate.served_while_held()
    await asyncio.wait_for(reconcile, A_WHILE)
    assert gate.events == ["write held", "loop served", "write let go"], gate.events


def test_a_metadata_note_is_written_off_the_loop() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            await placed(api, ctl, fed, SERVE)
            gate = Gate(fed)
            await held_reconcile(ctl, gate, edited(api, annotations={"federator.io/master-port": "abc"}))
            assert accepted_condition(api) == ("False", "MetadataIgnored")

    asyncio.run(main())


def test_a_status_accepted_of_a_job_from_before_0_12_is_written_off_the_loop() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            await placed(api, ctl, fed, SERVE)
        async with controller(api) as (fed2, ctl2):
            gate = Gate(fed2)
            await held_reconcile(ctl2, gate, edited(api, status=lambda s: s.pop("accepted")))  # as 0.11 left it
            assert api.objects[KEY]["status"]["accepted"]["replicas"] == 2

    asyncio.run(main())


def test_an_observed_generation_is_written_off_the_loop() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            await placed(api, ctl, fed, SERVE)
            gate = Gate(fed)
            await held_reconcile(ctl, gate, edited(api, spec={"ttlSecondsAfterFinished": 60}))
            assert api.objects[KEY]["status"]["observedGeneration"] == 2

    asyncio.run(main())


def test_a_kubectl_scale_is_stored_off_the_loop_and_the_member_told_once_stored() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            job, rec, pid = await placed(api, ctl, fed, {**SERVE, "replicas": 3})
            cancels_sent(rec)  # the outbox emptied
            gate = Gate(fed, lambda jobs: any(j.spec.replicas == 1 for j in jobs))
            reconcile = asyncio.ensure_future(ctl.reconcile("MODIFIED", edited(api, spec={"replicas": 1})))
            try:
                assert await asyncio.to_thread(gate.entered.wait, A_WHILE)
                gate.events.append("loop served")
                held = (job.spec.replicas, cancels_sent(rec))
            finally:
                gate.release.set()
            await asyncio.wait_for(reconcile, A_WHILE)
            assert gate.events == ["write held", "loop served", "write let go"], gate.events
            assert held == (3, {})  # untouched, and its member told nothing, until stored
            assert job.spec.replicas == 1 and pid in cancels_sent(rec)  # its part of 3 stopped whole
            assert api.objects[KEY]["status"]["observedGeneration"] == 2
            assert (api.objects[KEY]["spec"]["replicas"], api.objects[KEY]["metadata"]["generation"]) == (1, 2)

    asyncio.run(main())


def test_a_job_that_ends_while_its_kubectl_scale_is_stored_is_refused_and_the_users_count_kept() -> None:
    """The scaled state is stored first; the job's end, queued meanwhile, lands after it with the old count. The
    scale is decided again (refused: the job has ended), said once, and the object's spec.replicas stays the
    user's: before, the store took the end's count for a gRPC scale back and wrote it over the user's."""
    async def main() -> None:
        api, events = FlakyApi(), Events()
        async with controller(api, events=events) as (fed, ctl):
            job, rec, pid = await placed(api, ctl, fed, SERVE)
            gate = Gate(fed, lambda jobs: any(j.spec.replicas == 4 for j in jobs))
            reconcile = asyncio.ensure_future(ctl.reconcile("MODIFIED", edited(api, spec={"replicas": 4})))
            assert await asyncio.to_thread(gate.entered.wait, A_WHILE)
            fed.job_update(rec, pid, JobPhase.SUCCEEDED, "")  # its end, on the loop, while the scale is stored
            gate.release.set()
            await asyncio.wait_for(reconcile, A_WHILE)
            await asyncio.to_thread(fed.journal.drain)
            live = api.objects[KEY]
            assert job.phase is JobPhase.SUCCEEDED and job.spec.replicas == 2
            assert live["status"]["phase"] == "Succeeded" and live["status"]["accepted"]["replicas"] == 2
            assert (live["spec"]["replicas"], live["metadata"]["generation"]) == (4, 2)  # never set back
            assert accepted_condition(api) == ("False", "ScaleRefused")
            assert [e for e in events.told("ScaleRefused") if "has not ended" in e] != []

    asyncio.run(main())


def test_a_note_the_api_server_did_not_take_is_written_when_its_reconcile_is_tried_again() -> None:
    """The note is set before its write: the retry (`_work`, after StoreUnavailable) found it unchanged and wrote
    nothing, and the status never said it until another write of the job."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            await placed(api, ctl, fed, SERVE)
            Gate(fed, fail=True)
            obj = edited(api, annotations={"federator.io/master-port": "abc"})
            try:
                await ctl.reconcile("MODIFIED", obj)
            except StoreUnavailable:
                pass
            else:
                raise AssertionError("the note's write was not refused")
            assert accepted_condition(api) is None
            await ctl.reconcile("MODIFIED", obj)  # what `_work` does after retry_seconds
            assert accepted_condition(api) == ("False", "MetadataIgnored")

    asyncio.run(main())


def test_a_job_cancelled_while_its_note_is_written_stays_cancelled_with_its_note() -> None:
    """The note's write holds the job as it was; a gRPC Cancel meanwhile stores its own state after it, so the
    status ends Cancelled, and says the note."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            job, rec, pid = await placed(api, ctl, fed, SERVE)
            gate = Gate(fed)
            reconcile = asyncio.ensure_future(
                ctl.reconcile("MODIFIED", edited(api, annotations={"federator.io/master-port": "abc"})))
            assert await asyncio.to_thread(gate.entered.wait, A_WHILE)
            cancel = asyncio.ensure_future(fed.cancel_async(job.job_id))
            await asyncio.sleep(0)  # the Cancel queues its write behind the note's
            gate.release.set()
            await asyncio.wait_for(asyncio.gather(reconcile, cancel), A_WHILE)
            await asyncio.to_thread(fed.journal.drain)
            assert job.phase is JobPhase.CANCELLED and pid in cancels_sent(rec)
            assert api.objects[KEY]["status"]["phase"] == "Cancelled"
            assert accepted_condition(api) == ("False", "MetadataIgnored")

    asyncio.run(main())


def test_the_objects_next_edit_waits_for_its_scale_to_be_stored_and_is_applied_after_it() -> None:
    """One worker per object: a second `kubectl scale` while the first is stored is reconciled once the first is
    done, and the job ends at the second count."""
    async def main() -> None:
        api = FlakyApi()
        async with controller(api, workers=True) as (fed, ctl):
            job, rec, pid = await placed(api, ctl, fed, SERVE)
            gate = Gate(fed, lambda jobs: any(j.spec.replicas == 4 for j in jobs))
            ctl._enqueue("MODIFIED", edited(api, spec={"replicas": 4}))
            assert await asyncio.to_thread(gate.entered.wait, A_WHILE)
            ctl._enqueue("MODIFIED", edited(api, spec={"replicas": 5}))
            for _ in range(20):
                await asyncio.sleep(0)  # the loop runs on; the second edit's worker waits for the first
            held = job.spec.replicas
            gate.release.set()
            for _ in range(int(A_WHILE / 0.01)):  # A_WHILE guards against a hang; no assertion reads time
                if job.spec.replicas == 5 and api.objects[KEY]["status"].get("observedGeneration") == 3:
                    break
                await asyncio.sleep(0.01)
            assert held == 2
            assert job.spec.replicas == 5 and api.objects[KEY]["status"]["observedGeneration"] == 3
            assert (api.objects[KEY]["spec"]["replicas"], api.objects[KEY]["metadata"]["generation"]) == (5, 3)

    asyncio.run(main())
