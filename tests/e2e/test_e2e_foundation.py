"""End to end over real processes and sockets: register, report, submit, place, run, complete, restart."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import grpc
import pytest

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.backends.sim import NodeSet, load_fleet
from federator.cli.get import list_clusters, list_jobs
from federator.cli.submit_calls import submit_specs
from federator.jobfile import parse_job
from federator.local import LocalFederation
from federator.model import Job, JobPhase, ReasonCode

from support import EXAMPLES, eventually

pytestmark = pytest.mark.e2e


def fj(name: str, *, replicas: int = 1, gpus: int = 8, models: list[str] | None = None, duration: str = "1s",
       kind: str = "training", **spec: object) -> object:
    resources: dict[str, object] = {"cpu": "4", "memory": "16Gi"}
    if gpus:
        resources["nvidia.com/gpu"] = gpus
    body: dict[str, object] = {"kind": kind, "replicas": replicas, "resources": resources, **spec}
    if models:
        body["acceleratorModels"] = models
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-duration": duration}},
                      "spec": body})


def job_named(fed: LocalFederation, name: str) -> Job:
    return next(j for j in list_jobs(fed.client) if j.spec.name == name)


def test_agents_register_and_report_the_fleet(federation: LocalFederation) -> None:
    fleet = load_fleet(EXAMPLES / "fleet.yaml")
    clusters = {c["name"]: c for c in list_clusters(federation.client)}
    assert {n: c["region"] for n, c in clusters.items()} == {n: s.region for n, s in fleet.items()}
    for name, spec in fleet.items():
        expected = NodeSet.of(spec.nodes).capacity()
        got = clusters[name]["capacity"]
        assert clusters[name]["state"] == "Ready"
        assert (
            got.total_accelerators == expected.total_accelerators
            and got.free_accelerators == expected.free_accelerators
        )
        assert got.cpu_milli_free == expected.cpu_milli_free
    body = urllib.request.urlopen(federation.metrics_url, timeout=10).read().decode()
    assert "federator_clusters_connected 3.0" in body
    assert ('federator_cluster_accelerators{cluster="west-1",model="NVIDIA-H100-80GB-HBM3",region="west",'
            'state="total",vendor="nvidia"} 64.0') in body


def test_a_job_is_placed_runs_and_completes(federation: LocalFederation) -> None:
    seen: list[str] = []
    with federation.client.channel() as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        (job,) = submit_specs(federation.client, [fj("pretrain", replicas=4, models=["H100"], duration="1.5s")])
        stream = stub.Watch(jobs_pb2.WatchJobsRequest(job_id=job.job_id), timeout=60)

        def collect() -> None:
            for pb in stream:
                seen.append(convert.phase_from_pb(pb.phase).value)
                if seen[-1] == "Succeeded":
                    return

        t = threading.Thread(target=collect, daemon=True)
        t.start()
        done = eventually(lambda: (j := job_named(federation, "pretrain")).phase is JobPhase.SUCCEEDED and j,
                          what="the job to succeed")
        t.join(10)
        stream.cancel()
    # The only cluster with four nodes of 8 free H100 is the idle west-1.
    assert [p.cluster for p in done.placements] == ["west-1"]
    assert done.placements[0].replicas == 4 and "H100" in done.placements[0].accelerator_model
    assert seen[seen.index("Placed"):] == ["Placed", "Running", "Succeeded"], seen
    # Its accelerators are free again.
    west = eventually(lambda: next(c for c in list_clusters(federation.client) if c["name"] == "west-1"
                                   and c["capacity"].free_accelerators == 64), what="west-1 to free its accelerators")
    assert west["placements"] == 0


def test_unplaceable_job_stays_pending_with_a_reason(federation: LocalFederation) -> None:
    submit_specs(federation.client, [fj("giant", replicas=16, models=["H100"])])
    job = eventually(lambda: (j := job_named(federation, "giant")).pending_reason and
                     j.pending_reason.code is not ReasonCode.WAITING and j, what="a pending reason")
    assert job.phase is JobPhase.PENDING
    assert job.pending_reason is not None
    assert job.pending_reason.code is ReasonCode.GANG_DOES_NOT_FIT
    assert "west-1 fits 8 of 16" in job.pending_reason.message


def test_cancel_stops_the_placement_and_frees_capacity(federation: LocalFederation) -> None:
    (job,) = submit_specs(federation.client, [fj("long", replicas=2, models=["H100"], duration="300s")])
    eventually(lambda: job_named(federation, "long").phase is JobPhase.RUNNING, what="the job to run")
    subprocess.run([sys.executable, "-m", "federator", "cancel", job.job_id, *federation.client_args()],
                   check=True, capture_output=True)
    assert job_named(federation, "long").phase is JobPhase.CANCELLED
    eventually(lambda: all(c["capacity"].free_accelerators == c["capacity"].total_accelerators or c["name"] != "west-1"
                           for c in list_clusters(federation.client)), what="west-1 to free the accelerators")


def test_watch_into_a_reader_that_stops_ends_quietly_as_a_tool_killed_by_sigpipe(federation: LocalFederation) -> None:
    submit_specs(federation.client, [fj("first", gpus=0)])
    watch = subprocess.Popen([sys.executable, "-m", "federator", "watch", *federation.client_args()],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watch.stdout is not None and watch.stdout.readline().startswith("first-")
        watch.stdout.close()  # `federator watch | head -1`: the reader is gone
        submit_specs(federation.client, [fj("second", gpus=0)])  # so the next line has nowhere to go
        assert watch.wait(timeout=60) == 128 + 13
    finally:
        watch.kill()
    assert watch.stderr is not None and watch.stderr.read() == ""  # no traceback


def test_federator_restart_keeps_every_job(federation: LocalFederation) -> None:
    submit_specs(federation.client, [fj("running", replicas=1, models=["H100"], duration="4s"),
                                          fj("giant", replicas=16, models=["H100"])])
    eventually(lambda: job_named(federation, "running").phase is JobPhase.RUNNING, what="the job to run")
    before = {j.job_id: j for j in list_jobs(federation.client)}
    assert federation.server is not None
    federation.server.kill()  # SIGKILL: no chance to flush anything
    federation.start_server()
    after = {j.job_id: j for j in list_jobs(federation.client)}
    assert set(after) == set(before)
    for job_id, job in before.items():
        assert after[job_id].spec == job.spec
        assert [p.placement_id for p in after[job_id].placements] == [p.placement_id for p in job.placements]
    # The agents reconnect by themselves and the running job still completes, exactly once.
    eventually(lambda: sum(c["state"] == "Ready" and c["capacity"] is not None
                           for c in list_clusters(federation.client)) == 3, what="agents to reconnect")
    done = eventually(lambda: (j := job_named(federation, "running")).phase is JobPhase.SUCCEEDED and j,
                      what="the running job to finish after the restart")
    assert len(done.placements) == 1
    assert job_named(federation, "giant").phase is JobPhase.PENDING


def test_bad_submissions_are_refused_naming_the_field(federation: LocalFederation, tmp_path: Path) -> None:
    submit_specs(federation.client, [fj("keeper", duration="300s", models=["H100"])])
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {name: bad}\n"
                   "spec: {kind: training, replicas: 0, resources: {cpu: lots}}\n")
    cli = subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(bad),
                          *federation.client_args()], capture_output=True, text=True)
    assert cli.returncode == 2
    assert "spec.replicas" in cli.stderr and "spec.resources.cpu" in cli.stderr
    # The API validates too, with the same validator: a client that skips the file parser is refused.
    with federation.client.channel() as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        spec = convert.spec_to_pb(fj("bad-api"))
        spec.replicas = 0
        with pytest.raises(grpc.RpcError) as err:
            stub.Submit(jobs_pb2.SubmitRequest(spec=spec), timeout=10)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "spec.replicas" in (err.value.details() or "")
        duplicate = convert.spec_to_pb(fj("keeper"))
        with pytest.raises(grpc.RpcError) as err:
            stub.Submit(jobs_pb2.SubmitRequest(spec=duplicate), timeout=10)
        assert "metadata.name" in (err.value.details() or "")
    names = [j.spec.name for j in list_jobs(federation.client)]
    assert names == ["keeper"]  # nothing accepted was lost, nothing bad was added


def test_demo_places_the_examples_and_explains_the_pending_job(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "federator", "demo", "--workdir", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    table = {line.split()[0].rsplit("-", 1)[0]: line for line in lines if line.split()[:1] and
             line.split()[0].rsplit("-", 1)[0] in {"llm-pretrain", "chat-inference", "data-prep", "giant-gang"}
             and ("Succeeded" in line or "Pending" in line)}
    assert set(table) == {"llm-pretrain", "chat-inference", "data-prep", "giant-gang"}, out.stdout
    assert "Succeeded" in table["llm-pretrain"] and "west-1" in table["llm-pretrain"]
    assert "east-1" in table["chat-inference"] and "central-1" in table["chat-inference"]
    assert "Pending" in table["giant-gang"] and "GangDoesNotFit" in table["giant-gang"]
    assert "Prometheus metrics: http://127.0.0.1:" in out.stdout
    usage = {line.split()[0]: line for line in lines if line.split()[:1] and line.split()[0] in {
        "oregon-dc", "tokyo-dc", "frankfurt-dc", "TOTAL"}}  # federator usage --by provider
    assert {"oregon-dc", "TOTAL"} <= set(usage), out.stdout
