"""Fault tests with real processes on loopback: crashes, partitions, slow agents.

Each test starts `federator serve` and simulated agents as separate processes
(over mTLS, as in production) and breaks something for real: SIGKILL, a TCP
proxy that drops connections, an agent whose launches take long. What ran is
read from the agents' own logs ("launched placement ..."), not from the
federator, so "exactly once" is checked against the clusters' side.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import grpc
import pytest
from reliability_support import cluster_state, job, job_of, jobs_by_name, launches, metric

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.cli.get import list_jobs
from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation
from federator.model import JobPhase

from fault_proxy import proxy_to
from support import eventually

pytestmark = pytest.mark.e2e


def test_sigkill_of_the_federator_during_submissions_loses_and_duplicates_nothing(
        federation_factory: Callable[..., LocalFederation], caplog: pytest.LogCaptureFixture) -> None:
    fed = federation_factory("--lease-seconds", "5", "--lost-after", "120")
    names = [f"burst-{i:03d}" for i in range(36)]
    accepted: dict[str, str] = {}  # name -> the job id the client was told
    done = threading.Event()

    def submit_all() -> None:
        # The CLI's own path: one request id per spec, retried with the same id while the federator is
        # down, so a submission stored just before the SIGKILL (its reply lost) is answered, not duplicated.
        for name in names:
            (submitted,) = submit_specs(fed.client, [job(name, gpus=1, duration="1.5s")], attempts=60,
                                        max_backoff=1.0)
            accepted[name] = submitted.job_id
            time.sleep(0.15)  # a steady stream, so that both kills land in the middle of it
        done.set()

    submitter = threading.Thread(target=submit_all, daemon=True)
    submitter.start()
    rng = random.Random(6)
    raced = 0
    caplog.set_level(logging.WARNING, logger="federator.cli")
    for at in (6, 20):  # kill twice, at whatever moment the submissions have reached
        eventually(lambda at=at: len(accepted) >= at or done.is_set(), timeout=60, what=f"{at} submissions")
        time.sleep(rng.uniform(0, 0.3))
        assert fed.server is not None
        raced += not done.is_set()
        fed.server.kill()
        fed.start_server()
    submitter.join(120)
    assert done.is_set() and sorted(accepted) == names
    retries = [r.getMessage() for r in caplog.records if "retrying with request id" in r.getMessage()]
    assert raced and retries, (raced, retries)  # the kills hit the stream, and the client retried through them

    finished = eventually(lambda: (js := list_jobs(fed.client)) and all(j.phase is JobPhase.SUCCEEDED for j in js)
                          and js, timeout=120, what="every accepted job to succeed")
    assert sorted(j.spec.name for j in finished) == names  # nothing lost, nothing extra: one job per spec
    assert {j.spec.name: j.job_id for j in finished} == accepted  # and it is the job each client was told of
    ran = Counter(job_of(pid) for pids in launches(fed).values() for pid in pids)
    assert sorted(ran) == sorted(j.job_id for j in finished)
    assert set(ran.values()) == {1}, {j: n for j, n in ran.items() if n != 1}  # each launched exactly once


def test_a_retried_submit_gets_its_job_back_after_it_finished_and_the_federator_restarted(
        federation_factory: Callable[..., LocalFederation]) -> None:
    """The reply was lost and the client came back late: its request id still names the one job."""
    fed = federation_factory("--lease-seconds", "5", "--lost-after", "120")
    request = jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(job("late", gpus=1, duration="0.5s")),
                                     request_id="late-client-1")

    def submit(req: jobs_pb2.SubmitRequest) -> str:
        with fed.client.channel() as channel:
            return str(jobs_pb2_grpc.JobServiceStub(channel).Submit(req, timeout=10).job.job_id)

    first = submit(request)
    eventually(lambda: jobs_by_name(fed)["late"].phase is JobPhase.SUCCEEDED, what="the job to succeed")
    assert fed.server is not None
    fed.server.kill()
    fed.start_server()
    assert eventually(lambda: submit(request), what="the retry to be answered") == first
    (only,) = list_jobs(fed.client)
    assert (only.job_id, only.phase) == (first, JobPhase.SUCCEEDED)
    changed = jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(job("late", gpus=2)), request_id="late-client-1")
    with pytest.raises(grpc.RpcError) as err:
        submit(changed)
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    assert "request_id" in err.value.details()  # type: ignore[attr-defined]
    assert launches(fed)["a-1"] + launches(fed)["b-1"] == [f"{first}.g1.{only.placements[0].cluster}"]


def test_a_killed_agent_goes_partitioned_then_lost_and_its_job_is_re_placed(
        federation_factory: Callable[..., LocalFederation]) -> None:
    fed = federation_factory("--lease-seconds", "1", "--lost-after", "3")
    (submitted,) = submit_specs(fed.client, [job("survivor", duration="300s")])
    first = eventually(lambda: (j := jobs_by_name(fed)["survivor"]).phase is JobPhase.RUNNING and j,
                       what="the job to run")
    home = first.placements[0].cluster
    other = "b-1" if home == "a-1" else "a-1"
    fed.agents[home].kill()

    eventually(lambda: cluster_state(fed, home) == "Partitioned", what=f"{home} to be Partitioned")
    assert jobs_by_name(fed)["survivor"].placements[0].cluster == home  # no new work yet: it may come back
    eventually(lambda: cluster_state(fed, home) == "Lost", what=f"{home} to be Lost")
    moved = eventually(lambda: (j := jobs_by_name(fed)["survivor"]).phase is JobPhase.RUNNING
                       and j.placements[0].cluster == other and j, what="the job to run elsewhere")
    assert moved.placements[0].generation == first.placements[0].generation + 1
    assert moved.job_id == submitted.job_id
    assert metric(fed, "federator_cluster_state", cluster=home, state="Lost") == 1.0
    assert metric(fed, "federator_placement_retries_total", reason="ClusterNotReady") == 1.0

    # The cluster comes back empty (its agent restarted): it is Ready again and holds nothing.
    fed.start_agent(home)
    eventually(lambda: cluster_state(fed, home) == "Ready", what=f"{home} to be Ready again")
    assert [p.cluster for p in jobs_by_name(fed)["survivor"].placements] == [other]


@pytest.mark.parametrize(("heal_after_grace", "lost_after", "fence_after"), [
    (False, "15", ""), (True, "4", ""), (True, "6", "3"),
], ids=["heal-before-grace", "heal-after-grace", "heal-after-grace-self-fenced"])
def test_a_partitioned_agent_never_leaves_a_job_running_twice(
        federation_factory: Callable[..., LocalFederation], heal_after_grace: bool, lost_after: str,
        fence_after: str) -> None:
    fed = federation_factory("--lease-seconds", "1", "--lost-after", lost_after, agents=())
    with proxy_to(fed.grpc_target) as proxy:
        fence = ["--fence-after", fence_after] if fence_after else []
        fed.start_agent("a-1", *fence, server=proxy.address)  # only a-1 at first: the job must go there
        eventually(lambda: cluster_state(fed, "a-1") == "Ready", what="a-1 through the proxy")
        # Long enough that the first copy still runs when a-1 comes back after the grace time.
        duration = "20s" if heal_after_grace and not fence else "8s" if fence else "3s"
        submit_specs(fed.client, [job("split", duration=duration)])
        first = eventually(lambda: (j := jobs_by_name(fed)["split"]).phase is JobPhase.RUNNING and j,
                           what="the job to run on a-1")
        old = first.placements[0].placement_id
        fed.start_agent("b-1")
        eventually(lambda: cluster_state(fed, "b-1") == "Ready", what="b-1")

        proxy.cut()
        eventually(lambda: cluster_state(fed, "a-1") == "Partitioned", what="a-1 to be Partitioned")
        if heal_after_grace:
            eventually(lambda: jobs_by_name(fed)["split"].placements[0].cluster == "b-1",
                       what="the job re-placed on b-1 after a-1 is Lost")
            assert cluster_state(fed, "a-1") == "Lost"
        proxy.heal()
        eventually(lambda: cluster_state(fed, "a-1") == "Ready", what="a-1 back after the heal")
        a_log = fed.workdir / "agent-a-1.log"
        if heal_after_grace and not fence:  # the superseded copy is stopped as soon as a-1 re-syncs
            eventually(lambda: f"cancel placement {old}" in a_log.read_text(),
                       what="a-1 to cancel the superseded placement")
        final = eventually(lambda: (j := jobs_by_name(fed)["split"]).phase.is_terminal and j, timeout=60,
                           what="the job to finish")
    assert final.phase is JobPhase.SUCCEEDED
    ran = launches(fed)
    assert metric(fed, "federator_jobs_finished_total", phase="Succeeded") == 1.0  # completed once
    if heal_after_grace:
        (new,) = final.placements
        assert new.cluster == "b-1" and new.generation == first.placements[0].generation + 1
        assert ran == {"a-1": [old], "b-1": [new.placement_id]}
    else:
        assert [p.placement_id for p in final.placements] == [old]  # kept: it came back within the grace time
        assert ran == {"a-1": [old], "b-1": []}
    if fence:  # a-1 stopped its copy on its own, before b-1 started the replacement: never two at once
        fenced = logged_at(a_log, f"fenced: stopping placement {old}")
        started = logged_at(fed.workdir / "agent-b-1.log", f"launched placement {final.placements[0].placement_id}")
        assert fenced < started, (fenced, started)


def logged_at(log: Path, words: str) -> datetime:
    line = next(line for line in log.read_text().splitlines() if words in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def test_a_slow_agent_does_not_hold_up_the_others(federation_factory: Callable[..., LocalFederation]) -> None:
    fed = federation_factory("--lease-seconds", "30", agent_args={"a-1": ["--sim-launch-latency", "25"]})
    submit_specs(fed.client, [job(f"w{i}", duration="0.5s") for i in range(4)])  # two fit each cluster
    placed = eventually(lambda: (js := jobs_by_name(fed)) and all(j.placements for j in js.values()) and js,
                        what="every job placed")
    on = {name: j.placements[0].cluster for name, j in placed.items()}
    assert sorted(Counter(on.values()).values()) == [2, 2], on
    fast = [n for n, c in on.items() if c == "b-1"]
    slow = [n for n, c in on.items() if c == "a-1"]
    eventually(lambda: all(jobs_by_name(fed)[n].phase is JobPhase.SUCCEEDED for n in fast),
               what="b-1's jobs to finish while a-1 is still launching")
    # More work keeps flowing to the healthy cluster while a-1 is stuck in its launches.
    submit_specs(fed.client, [job(f"more{i}", duration="0.5s") for i in range(2)])
    eventually(lambda: all((j := jobs_by_name(fed)[f"more{i}"]).phase is JobPhase.SUCCEEDED
                           and j.placements[0].cluster == "b-1" for i in range(2)), what="more work through b-1")
    js = jobs_by_name(fed)
    assert all(js[n].phase is JobPhase.PLACED for n in slow), {n: js[n].phase for n in slow}
    assert cluster_state(fed, "a-1") == "Ready"  # slow is not dead: its lease is renewed by its reports


def test_sigkill_during_a_burst_of_concurrent_submissions_loses_no_acknowledged_job(
        federation_factory: Callable[..., LocalFederation]) -> None:
    """Group commit: many Submits share one fsync, and each is answered only after its batch is durable.

    32 clients submit as fast as they can; the federator is SIGKILLed in the middle of the burst (batches
    in flight). Every job a client was told about must be there after the restart."""
    fed = federation_factory(agents=())
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with fed.client.channel() as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            for i in range(10_000):
                if stop.is_set():
                    return
                req = jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(job(f"burst-{n}-{i}", gpus=1)))
                try:
                    got = stub.Submit(req, timeout=10)
                except grpc.RpcError:
                    return  # the federator is gone: this client's last request may or may not be stored
                with lock:
                    acknowledged.append(got.job.job_id)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(32)]
    for t in threads:
        t.start()
    eventually(lambda: len(acknowledged) >= 300, timeout=120, what="300 acknowledged submissions")
    assert fed.server is not None
    fed.server.kill()  # mid-burst: the clients are still sending
    stop.set()
    for t in threads:
        t.join(30)
    with lock:
        told = set(acknowledged)
    fed.start_server()
    stored = {j.job_id for j in list_jobs(fed.client)}
    assert told <= stored, sorted(told - stored)[:10]  # nothing a client was told of is lost
    assert len(told) >= 300
