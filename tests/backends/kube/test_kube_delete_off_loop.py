"""Kubernetes mode: the job of a deleted FederatedJob is cancelled with its write awaited off the event loop.

The controller's deletion handler called the blocking `Federator.cancel`, whose write (a FederatedJob status write:
an HTTP round trip to the API server) held the event loop, and every agent stream with it. Now it awaits the
Cancel's write (server/cancelling.py). A store write the test holds stands for a slow API server; what is checked
is *order*, never time: the loop runs the test's own coroutine while the write is held, and the member hears the
cancel only once the job is stored Cancelled.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Iterable

from test_kube_cancel_kept import SPEC, _capacity

from federator.model import Job, JobPhase

from kube_fakes import HostApi, controller, running_on_member_a
from support import cancels_sent

A_WHILE = 20.0  # a guard against a hang (the old code held the loop until this ran out): no assertion reads time


def test_a_deleted_federatedjobs_cancel_is_written_off_the_loop_and_its_member_told_once_stored() -> None:
    async def main() -> None:
        api = HostApi()
        async with controller(api) as (fed, ctl):
            rec, pid = await running_on_member_a(api, fed, ctl, "q-train", SPEC, _capacity())
            job = fed.get("q-train")
            await asyncio.to_thread(fed.journal.drain)

            entered, release, events = threading.Event(), threading.Event(), []
            real = fed.journal.store.put

            def put(jobs: Iterable[Job]) -> None:  # the cancel's status write waits for the test
                jobs = list(jobs)
                if not entered.is_set() and any(j.phase is JobPhase.CANCELLED for j in jobs):
                    entered.set()
                    events.append("write held")
                    events.append("write let go" if release.wait(A_WHILE) else "write timed out")
                real(jobs)

            fed.journal.store.put = put
            obj = api.objects[("research", "q-train")]
            obj["metadata"]["deletionTimestamp"] = "2026-12-06T08:00:00Z"
            deletion = asyncio.ensure_future(ctl.reconcile("MODIFIED", copy.deepcopy(obj)))
            try:
                assert await asyncio.to_thread(entered.wait, A_WHILE)
                events.append("loop served")  # this coroutine ran while the write was held
                held = (job.phase, cancels_sent(rec))
            finally:
                release.set()
            await asyncio.wait_for(deletion, A_WHILE)
            assert events == ["write held", "loop served", "write let go"], events
            assert held == (JobPhase.RUNNING, {})  # untouched, and no member told, until stored
            assert job.phase is JobPhase.CANCELLED and pid in cancels_sent(rec)

    asyncio.run(main())
