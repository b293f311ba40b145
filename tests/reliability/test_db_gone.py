"""The --db file deleted under a running `federator serve`, then a restart on the empty path (outside SRE F1).

Before: the federator went on acknowledging Submits into the unlinked file (all lost), and the restart on an
empty store told every agent to cancel every placement it ran, without a line of its own. Now the Submit is
UNAVAILABLE naming the cause, and the restarted federator holds what its agents run for --orphan-grace.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest
from reliability_support import job, jobs_by_name, metric

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli.get import list_jobs
from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation
from federator.model import JobPhase

from support import eventually

pytestmark = pytest.mark.e2e
GRACE = 8.0


def test_a_deleted_db_acknowledges_nothing_and_a_restart_on_it_cancels_nothing_within_the_grace(
        federation_factory: Callable[..., LocalFederation]) -> None:
    fed = federation_factory("--orphan-grace", str(GRACE))
    (running,) = submit_specs(fed.client, [job("long", gpus=1, duration="600s")])
    placed = eventually(lambda: (j := jobs_by_name(fed)["long"]).phase is JobPhase.RUNNING and j,
                        what="the job to run")
    home, pid = placed.placements[0].cluster, placed.placements[0].placement_id
    db = fed.workdir / "federator.db"
    db.unlink()

    with fed.client.channel() as channel, pytest.raises(grpc.RpcError) as refused:
        jobs_pb2_grpc.JobServiceStub(channel).Submit(
            jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(job("during", gpus=1)), request_id="r-1"), timeout=10)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert f"the job store file {db} was deleted" in refused.value.details()  # type: ignore[attr-defined]
    assert metric(fed, "federator_store_file_gone") == 1.0
    assert (metric(fed, "federator_store_write_errors_total", reason="file_gone") or 0) >= 1
    assert "ERROR" in (fed.workdir / "federator.log").read_text().split(f"the job store file {db} was deleted")[0] \
        .splitlines()[-1]

    assert fed.server is not None
    fed.server.stop()
    fed.start_server()  # the same --db path, now empty
    log = (fed.workdir / "federator.log").read_text()
    assert f"creating a new, empty job store at {db}" in log
    assert list_jobs(fed.client) == []
    agent_log = fed.workdir / f"agent-{home}.log"
    eventually(lambda: metric(fed, "federator_orphan_placements", cluster=home) == 1.0,
               what="the orphan to be counted")
    restarted = time.monotonic()
    while time.monotonic() - restarted < GRACE / 2:
        assert f"cancel placement {pid}" not in agent_log.read_text()
        time.sleep(0.3)
    eventually(lambda: f"cancel placement {pid}: orphan: the federator's store has no record of its job" in
               agent_log.read_text(), timeout=GRACE * 3, what="the orphan's cancel once the grace is over")
    assert running.job_id in pid
    assert "runs 1 placement(s) of jobs this federator's store has no record of" in \
        (fed.workdir / "federator.log").read_text()
