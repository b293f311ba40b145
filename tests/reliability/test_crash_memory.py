"""What a SIGKILL of `federator serve` at the bad moment loses of what it held in memory, over real processes.

Each test kills the federator (SIGKILL: nothing flushed, nothing said to the agents) while it holds one kind of
state that was memory only before 0.8.0, starts it again on the same --db, and checks what a user or operator
sees:

- the certificate date of an agent that cannot connect (its series, which FederatorClusterCertificateExpired
  reads): kept with the member (store/members.py), else the alert cannot fire;
- an agent's Hello features while the agent is not back: kept with the member, else a job scaled down meanwhile
  has its part there stopped whole and placed again (outside QA F11 again);
- a gang's reservation: not kept, re-derived by the first cycle from the stored jobs' waits and the agents'
  reports; the room it held is not given away at the restart;
- a rebalancer move in flight: not kept, re-derived from the stored placements (the surge is one); the job ends
  with its count, near its users, neither short nor doubled.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from reliability_support import FAST, cluster_state, jobs_by_name, launches, metric

from federator.api.v1 import jobs_pb2
from federator.cli.calls import connect
from federator.cli.submit_calls import submit_specs
from federator.jobfile import parse_job
from federator.local import LocalFederation
from federator.model import Job, JobPhase, JobSpec, ReasonCode
from federator.security import pki
from federator.security.pki import Identity, IdentityKind, init_ca, issue

from support import eventually, scraped

pytestmark = pytest.mark.e2e
EXPIRY = "federator_cluster_certificate_expiration_timestamp_seconds"
CYCLES = "federator_scheduling_cycle_duration_seconds_count"


def serving(name: str, replicas: int, *, startup: str = "0.1s", **regions: object) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-duration": "600s",
                                                                 "federator.io/sim-startup": startup}},
                      "spec": {"kind": "inference", "replicas": replicas, "regions": regions,
                               "resources": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": 8}}})


def restart(fed: LocalFederation) -> None:
    """SIGKILL the federator and start it again on the same --db (and port)."""
    fed.server.kill()
    fed.start_server()


def test_the_certificate_date_of_an_agent_that_cannot_connect_survives_a_sigkill(tmp_path: Path) -> None:
    """east-1's agent presented its certificate and went away (it expired: it cannot connect). After the
    federator's SIGKILL and restart its expiry series is still there, with the date, next to connected 0: what
    FederatorClusterCertificateExpired needs. Before, the series was gone until the agent connected, never."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("clusters:\n  - {name: east-1, region: east, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}\n")
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet, serve_args=FAST)
    init_ca(fed.certs)
    not_after = pki.load_cert(issue(fed.certs, Identity(IdentityKind.CLUSTER, "east-1"), days=3)).not_valid_after_utc
    try:
        fed.start_server(timeout=60)
        agent = fed.start_agent("east-1", timeout=60)
        eventually(lambda: scraped(fed.metrics_url, "federator_cluster_connected", cluster="east-1") == 1.0,
                   timeout=60, what="east-1 connected")
        eventually(lambda: cluster_state(fed, "east-1") == "Ready", what="east-1 Ready (its member written)")
        agent.stop()
        eventually(lambda: scraped(fed.metrics_url, "federator_cluster_connected", cluster="east-1") == 0.0,
                   timeout=60, what="east-1 disconnected")

        restart(fed)
        assert scraped(fed.metrics_url, "federator_cluster_connected", cluster="east-1", region="east") == 0.0
        assert scraped(fed.metrics_url, EXPIRY, cluster="east-1", region="east") == not_after.timestamp()
    finally:
        fed.stop()


def test_a_job_scaled_down_after_a_sigkill_shrinks_the_part_of_an_agent_not_back_yet_in_place(
        federation_factory: Callable[..., LocalFederation]) -> None:
    """`chat` runs 2 replicas on a-1 and 2 on b-1, both agents able to resize. a-1's agent is frozen (SIGSTOP: its
    member keeps running the part) and the federator is SIGKILLed; on the restarted one, before a-1 is back,
    chat is scaled to 2. a-1's part keeps its id and shrinks in place when its agent is back; nothing is stopped
    or launched anew. Before, the restart forgot a-1's features: its part was stopped and placed again."""
    fed = federation_factory()
    (chat,) = submit_specs(fed.client, [serving("chat", 4, minRegions=2)])
    first = eventually(lambda: (j := jobs_by_name(fed)["chat"]).phase is JobPhase.RUNNING and j,
                       what="chat running on a-1 and b-1")
    ids = {p.cluster: p.placement_id for p in first.placements}
    assert sorted((p.cluster, p.replicas) for p in first.placements) == [("a-1", 2), ("b-1", 2)]

    a1 = fed.agents["a-1"].popen
    os.kill(a1.pid, signal.SIGSTOP)
    try:
        restart(fed)
        eventually(lambda: cluster_state(fed, "b-1") == "Ready", what="b-1 back")
        assert cluster_state(fed, "a-1") == "Partitioned"
        with connect(fed.client) as (jobs, _):
            jobs.Scale(jobs_pb2.ScaleJobRequest(job_id=chat.job_id, replicas=2), timeout=10)
        scaled = jobs_by_name(fed)["chat"]
        assert sorted((p.cluster, p.placement_id, p.replicas) for p in scaled.placements) == [
            ("a-1", ids["a-1"], 1), ("b-1", ids["b-1"], 1)], scaled.message
    finally:
        os.kill(a1.pid, signal.SIGCONT)
    eventually(lambda: cluster_state(fed, "a-1") == "Ready", timeout=60, what="a-1 back")
    a_log = fed.workdir / "agent-a-1.log"
    eventually(lambda: f"placement {ids['a-1']}: 1 replicas from now on" in a_log.read_text(),
               what="a-1 to shrink its part in place at its re-sync")
    after = jobs_by_name(fed)["chat"]
    assert sorted((p.cluster, p.placement_id) for p in after.placements) == sorted(ids.items())
    assert launches(fed) == {"a-1": [ids["a-1"]], "b-1": [ids["b-1"]]}  # no part stopped and launched anew


ONE_CLUSTER = {"clusters": [{"name": "a-1", "region": "a", "nodes": [
    {"count": 1, "gpuModel": "NVIDIA-H100-80GB-HBM3", "gpus": 8, "cpu": 96, "memory": "1Ti", "busyGpus": 8},
    {"count": 1, "gpuModel": "NVIDIA-H100-80GB-HBM3", "gpus": 8, "cpu": 96, "memory": "1Ti"}]}]}


def training(name: str, replicas: int) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-duration": "600s"}},
                      "spec": {"kind": "training", "replicas": replicas,
                               "resources": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": 8}}})


def test_a_gangs_reservation_is_chosen_again_after_a_sigkill_and_its_room_is_not_given_away(
        federation_factory: Callable[..., LocalFederation], tmp_path: Path) -> None:
    """a-1 has one free node of 8 H100 (the other is busy with work the federator does not manage). `gang` (2 x 8)
    waits past reservations.afterSeconds and holds a-1's room; `small` (1 x 8) would fit on the free node but
    waits, Reserved. After a SIGKILL the restarted federator holds the room for the gang again from its stored
    wait, and small still waits: nothing stored, nothing lost that a user sees but the hold's `since`."""
    fleet, policy = tmp_path / "one.yaml", tmp_path / "policy.yaml"
    fleet.write_text(yaml.safe_dump(ONE_CLUSTER))
    policy.write_text(yaml.safe_dump({"reservations": {"enabled": True, "afterSeconds": 1}}))
    fed = federation_factory("--policy", str(policy), agents=("a-1",), fleet=fleet)
    submit_specs(fed.client, [training("gang", 2)])
    eventually(lambda: metric(fed, "federator_reservations") == 1.0, what="the gang to hold a-1's room")
    submit_specs(fed.client, [training("small", 1)])

    def small_reserved() -> bool:
        small = jobs_by_name(fed)["small"]
        return not small.placements and small.pending_reason is not None \
            and small.pending_reason.code is ReasonCode.RESERVED

    eventually(small_reserved, what="small kept off the gang's room")

    restart(fed)
    eventually(lambda: cluster_state(fed, "a-1") == "Ready", what="a-1 back")
    eventually(lambda: metric(fed, "federator_reservations") == 1.0, what="the gang's room held again")
    eventually(small_reserved, what="small Reserved after the restart")
    # a few cycles more (0.2 s apart): the room still not given away
    cycles = metric(fed, CYCLES) or 0.0
    eventually(lambda: (metric(fed, CYCLES) or 0.0) >= cycles + 5, what="5 cycles")
    assert small_reserved() and jobs_by_name(fed)["gang"].phase is JobPhase.PENDING
    assert launches(fed).get("a-1", []) == []


NEAR_AND_FAR = {"clusters": [
    {"name": name, "region": region, "nodes": [
        {"count": 2, "gpuModel": "NVIDIA-H100-80GB-HBM3", "gpus": 8, "cpu": 96, "memory": "1Ti"}]}
    for name, region in (("near-1", "near"), ("far-1", "far"))]}


def test_a_move_in_flight_at_a_sigkill_ends_with_the_job_near_and_neither_short_nor_doubled(
        federation_factory: Callable[..., LocalFederation], tmp_path: Path) -> None:
    """`chat` (2 replicas, preferred region near) runs on far-1 while near-1 is away. near-1 joins; the rebalancer
    starts a move: a surge placement of 2 on near-1, starting slowly (sim-startup 3 s). The federator is
    SIGKILLed while the surge starts. The restarted one finds the job over its count from the stored placements
    and, once the surge serves, takes the surplus from far-1: chat ends with 2 replicas on near-1, the surge
    launched once, far-1's part stopped, and it never served fewer than 2."""
    fleet = tmp_path / "near.yaml"
    fleet.write_text(yaml.safe_dump(NEAR_AND_FAR))
    fed = federation_factory("--settle-seconds", "0", agents=("far-1",), fleet=fleet)
    submit_specs(fed.client, [serving("chat", 2, startup="3s", preferred=["near"])])
    first = eventually(lambda: (j := jobs_by_name(fed)["chat"]).phase is JobPhase.RUNNING and j,
                       timeout=30, what="chat running on far-1")
    (far,) = first.placements
    fed.start_agent("near-1")
    surging = eventually(lambda: len((j := jobs_by_name(fed)["chat"]).placements) == 2 and j, timeout=90,
                         what="the rebalancer's surge placed on near-1")
    (surge,) = [p for p in surging.placements if p.cluster == "near-1"]
    assert surge.phase is JobPhase.PLACED  # still starting: the move is in flight

    restart(fed)
    def moved() -> Job | None:
        j = jobs_by_name(fed)["chat"]
        return j if [p.cluster for p in j.placements] == ["near-1"] and j.phase is JobPhase.RUNNING else None

    done = eventually(moved, timeout=60, what="chat moved to near-1 whole")
    assert [(p.placement_id, p.replicas) for p in done.placements] == [(surge.placement_id, 2)]
    assert done.replicas_waiting == 0
    assert launches(fed) == {"far-1": [far.placement_id], "near-1": [surge.placement_id]}
    assert f"cancel placement {far.placement_id}" in (fed.workdir / "agent-far-1.log").read_text()  # far-1's part


