"""A submit whose caller goes away while its write is on the disk: the job is accepted all the same.

Found by CI on the chaos test of a killed `federator submit` (tests/reliability/test_cli_resubmit.py):
the CLI was SIGKILLed while its job's group commit was in flight, the gRPC call was cancelled, and
the cancellation reached the await on the commit. The federator forgot the job the disk then held: the
retry with the same request id made a second job, and a restart would have brought back the first.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from server_support import MemoryStore, spec

from federator.jobfile import REQUEST_ID_ANNOTATION
from federator.server.federator import Federator

A_WHILE = 60.0  # only a guard against a hang


class GatedStore(MemoryStore):
    """Every write waits for the test: the disk is busy while the caller goes away."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.writing = threading.Event()

    def put(self, jobs: Any) -> None:
        jobs = list(jobs)
        self.writing.set()
        self.gate.wait(A_WHILE)
        super().put(jobs)


def test_a_submit_cancelled_while_its_write_is_on_the_disk_is_still_accepted_once() -> None:
    async def scenario() -> None:
        store = GatedStore()
        fed = Federator(store=store)
        first = asyncio.get_running_loop().create_task(fed.submit_async(spec("train", gpus=1), request_id="req-1"))
        while not store.writing.is_set():
            await asyncio.sleep(0.01)
        first.cancel()  # the client was killed: grpc cancels the handler's task
        await asyncio.sleep(0.05)
        store.gate.set()
        while not store.docs:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the write's completion runs on the loop
        (job_id,) = store.docs
        assert job_id in fed.jobs  # what the disk holds, the federator holds
        assert fed.cycles.pending_count == 1  # and schedules
        again = await fed.submit_async(spec("train", gpus=1), request_id="req-1")  # the client's retry
        assert again.job_id == job_id and again.spec.annotation(REQUEST_ID_ANNOTATION) == "req-1"
        assert list(store.docs) == [job_id] and fed.cycles.pending_count == 1  # one job, not two

    asyncio.run(scenario())
