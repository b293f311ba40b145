"""A job that ends while its agent process is stopped (SIGSTOP) is billed to its end, not to the agent's resume.

Outside billing QA F9 (repro/agent_pause_end.sh): 1 x 8 H100 for 15 s, its agent SIGSTOPped 5 s into the run for
18 s: finishedAt was the resume, and the job was billed 181.1 accelerator-seconds for 120. The simulated member's run
ends on time while the agent is stopped; on resume the agent says the run's scheduled end (agent/ended.py), so the
job's run time is its duration. Real federator and agent processes on loopback, as the tester ran them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from reliability_support import job, jobs_by_name

from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation
from federator.model import JobPhase

from support import eventually

pytestmark = pytest.mark.e2e

RUN_SECONDS = 3.0
PAUSE_SECONDS = 6.0  # the job ends RUN_SECONDS - 1 into it; under the fence limit and --lost-after


def test_a_job_that_ends_while_its_agent_is_stopped_is_billed_to_its_end(
        federation_factory: Callable[..., LocalFederation]) -> None:
    fed = federation_factory(agents=("a-1",))
    submit_specs(fed.client, [job("short", duration=f"{RUN_SECONDS:g}s")])
    eventually(lambda: jobs_by_name(fed)["short"].phase is JobPhase.RUNNING, what="the job to run on a-1")
    agent = fed.agents["a-1"].popen
    time.sleep(1.0)
    os.kill(agent.pid, signal.SIGSTOP)  # a VM pause, a long GC pause: the member's run goes on
    try:
        time.sleep(PAUSE_SECONDS)
    finally:
        os.kill(agent.pid, signal.SIGCONT)
    done = eventually(lambda: (j := jobs_by_name(fed)["short"]).phase is JobPhase.SUCCEEDED and j,
                      what="the job's end, heard after the resume")
    ran = done.finished_at - done.started_at
    # Its run time, within a second (startup and the estimate's transit); not the pause (PAUSE_SECONDS + 1).
    assert RUN_SECONDS - 1.0 <= ran <= RUN_SECONDS + 1.0, ran
