"""An agent frozen past --lost-after and then resumed (SIGSTOP, SIGCONT): never a job on two clusters at once.

Found by running the product as a black box: a frozen agent keeps its stream
(TCP is up, the kernel buffers what the federator sends), the federator
declares its cluster Lost and re-places its jobs, and on SIGCONT the agent
launched an order that had waited in its socket buffer, while the copies it
had started before the freeze ran on beside their replacements. What ran is
read from the agents' own logs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from reliability_support import cluster_state, job, jobs_by_name, launches

from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation
from federator.model import JobPhase

from support import eventually

pytestmark = pytest.mark.e2e


def at(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def test_an_agent_resumed_after_a_freeze_past_lost_after_fences_first_and_launches_nothing_stale(
        federation_factory: Callable[..., LocalFederation]) -> None:
    # lost-after 4 s, orders at most 1 s old (a quarter): a-1 without --fence-after fences after 3 s away.
    fed = federation_factory("--lease-seconds", "3", "--lost-after", "4", agents=("a-1",))
    (long,) = submit_specs(fed.client, [job("long", duration="300s")])
    first = eventually(lambda: (j := jobs_by_name(fed)["long"]).phase is JobPhase.RUNNING and j,
                       what="the job to run on a-1")
    old = first.placements[0].placement_id

    a1 = fed.agents["a-1"].popen
    os.kill(a1.pid, signal.SIGSTOP)  # a VM pause, a long GC pause: the process stops, its socket stays up
    frozen_at = datetime.now()
    try:
        # a-1 is still Ready for a lease: a job placed now has its Launch waiting in a-1's socket buffer.
        (late,) = submit_specs(fed.client, [job("late", duration="300s")])
        stale = eventually(lambda: (j := jobs_by_name(fed)["late"]).placements and j, timeout=3,
                           what="late placed on a-1 while a-1 is still Ready (within the 3 s lease)")
        stale_id = stale.placements[0].placement_id
        assert stale.placements[0].cluster == "a-1"
        fed.start_agent("b-1")
        eventually(lambda: cluster_state(fed, "a-1") == "Lost", what="a-1 to be Lost")
        moved = eventually(lambda: (js := jobs_by_name(fed)) and all(
            js[n].phase is JobPhase.RUNNING and js[n].placements[0].cluster == "b-1" for n in ("long", "late"))
            and js, timeout=60, what="both jobs re-placed and running on b-1")
    finally:
        os.kill(a1.pid, signal.SIGCONT)
    resumed_at = datetime.now()
    eventually(lambda: cluster_state(fed, "a-1") == "Ready", what="a-1 back after the resume")

    a_log = (fed.workdir / "agent-a-1.log").read_text().splitlines()
    after = [line for line in a_log if line[:4].isdigit() and at(line) >= resumed_at.replace(microsecond=0)]
    # Nothing stale was started: the Launch that waited in the buffer was refused.
    assert stale_id not in launches(fed)["a-1"], "\n".join(after)
    # The copy started before the freeze was stopped by a-1 itself, first thing, before it re-synced (and so
    # before the federator could tell it to): nothing of the old copy ran on beside its replacement.
    fenced = next(i for i, line in enumerate(a_log) if f"fenced: stopping placement {old}" in line)
    reconnected = next(i for i, line in enumerate(a_log) if i > fenced and "connected to" in line)
    assert not any(f"cancel placement {old}" in line for line in a_log[:reconnected]), "\n".join(after)
    assert at(a_log[fenced]) >= frozen_at.replace(microsecond=0)
    # Each job ran on one cluster at a time: a-1's copies stopped at the freeze (the process was stopped) and
    # were fenced on resume before anything else ran; b-1's started while a-1 was frozen.
    b_started = [at(line) for line in (fed.workdir / "agent-b-1.log").read_text().splitlines()
                 if "launched placement" in line]
    assert len(b_started) == 2 and all(frozen_at <= t <= resumed_at for t in b_started)
    assert {j.job_id for j in moved.values()} == {long.job_id, late.job_id}
    assert [p.placement_id for p in jobs_by_name(fed)["late"].placements] != [stale_id]
    print(f"fenced {(at(a_log[fenced]) - resumed_at).total_seconds():+.3f}s after SIGCONT")


def test_a_fence_after_that_breaks_the_rule_is_refused_by_the_agent(
        federation_factory: Callable[..., LocalFederation]) -> None:
    fed = federation_factory("--lease-seconds", "2", "--lost-after", "4", agents=())
    proc = fed.start_agent("a-1", "--fence-after", "10")  # 10 > lost_after 4 - order_max_age 1
    assert proc.popen.wait(30) == 1
    text = proc.log.read_text()
    assert "--fence-after 10 breaks the federator's rule lost_after >= fence_after + order_max_age" in text
    assert "set --fence-after to at most 3" in text


def test_a_federator_whose_timing_leaves_no_room_to_fence_is_refused(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "federator", "serve", "--insecure", "--listen", "127.0.0.1:0",
                          "--metrics-listen", "127.0.0.1:0", "--db", str(tmp_path / "db"), "--lost-after", "5",
                          "--order-max-age", "5"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "--lost-after 5 must be longer than --order-max-age 5" in out.stderr
