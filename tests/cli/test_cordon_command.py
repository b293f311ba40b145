"""`federator cordon | uncordon CLUSTER` against a real ClusterService, and what `get clusters` then shows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cli_support import serving

from federator.cli import main
from federator.cli.times import local_text
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, pool


def test_cordon_shows_in_get_clusters_and_uncordon_ends_it(capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    fed.report(fed.connect(cluster="east-1", region="east", labels={}),
               cluster("east-1", "east", pool("NVIDIA-H100", nodes=1)).capacity)
    with serving(fed) as address:
        server = ["--server", address, "--insecure"]
        assert main(["cordon", "east-1", "--reason", "driver upgrade", *server]) == 0
        out = capsys.readouterr().out
        assert out.startswith("cluster east-1 cordoned (by anonymous at ") and out.endswith(": driver upgrade)\n")
        assert main(["get", "clusters", *server]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[2] == "Ready,Cordoned"
        assert main(["get", "clusters", "-o", "json", *server]) == 0
        listed = capsys.readouterr().out
        assert '"cordon_reason": "driver upgrade"' in listed and '"cordoned_by": "anonymous"' in listed

        assert main(["uncordon", "east-1", *server]) == 0
        assert capsys.readouterr().out == "cluster east-1 uncordoned (cordon ended); it takes new work\n"
        assert main(["get", "clusters", *server]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[2] == "Ready"
        assert main(["uncordon", "east-1", *server]) == 0
        assert capsys.readouterr().out == "cluster east-1 was neither cordoned nor quarantined\n"


def test_cordoning_a_name_no_agent_has_used_warns(capsys: pytest.CaptureFixture[str]) -> None:
    with serving(Federator(store=SqliteJobStore(Path(":memory:")))) as address:
        assert main(["cordon", "eats-1", "--server", address, "--insecure"]) == 0
    got = capsys.readouterr()
    assert got.out.startswith("cluster eats-1 cordoned (by anonymous at ")
    assert "warning: no agent of a cluster named 'eats-1' has connected to this federator" in got.err


def test_a_bad_name_is_refused_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    with serving(Federator(store=SqliteJobStore(Path(":memory:")))) as address:
        assert main(["cordon", "East_1", "--server", address, "--insecure"]) == 1
    assert capsys.readouterr().err.startswith("error: cluster: 'East_1' is not a member cluster's name")


def test_get_clusters_name_shows_that_cluster_or_says_there_is_none(capsys: pytest.CaptureFixture[str]) -> None:
    """Outside QA's Go agent (F9): a name was ignored, every cluster listed and 0 returned, even for none."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    for name in ("east-1", "west-1"):
        fed.report(fed.connect(cluster=name, region=name[:4], labels={}),
                   cluster(name, name[:4], pool("NVIDIA-H100", nodes=1)).capacity)
    with serving(fed) as address:
        assert main(["get", "clusters", "west-1", "--server", address, "--insecure"]) == 0
        rows = capsys.readouterr().out.splitlines()[1:]
        assert [r.split()[0] for r in rows] == ["west-1"]
        assert main(["get", "clusters", "nosuch", "--server", address, "--insecure"]) == 3
        assert capsys.readouterr().err == "error: no cluster 'nosuch'\n"


def test_forget_drops_a_lost_cluster_and_refuses_one_that_is_not(capsys: pytest.CaptureFixture[str]) -> None:
    """Outside provider QA (F5): in standalone mode a retired cluster stayed a day after Lost, with no command."""
    from federator.model import ClusterState

    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool("NVIDIA-H100", nodes=1)).capacity)
    with serving(fed) as address:
        server = ["--server", address, "--insecure"]
        assert main(["forget", "east-1", *server]) == 1
        assert "cluster 'east-1' is Ready, not Lost" in capsys.readouterr().err
        fed.disconnect(rec)
        rec.state, rec.lost_at = ClusterState.LOST, fed.clock()
        assert main(["forget", "east-1", *server]) == 0
        assert capsys.readouterr().out.startswith("cluster east-1 forgotten (Lost since ")
        assert main(["get", "clusters", "-o", "json", *server]) == 0
        assert "east-1" not in capsys.readouterr().out


def test_forget_in_kubernetes_mode_names_kubectl_delete_mc(capsys: pytest.CaptureFixture[str]) -> None:
    """In Kubernetes mode the MemberClusters are the members' record, and `kubectl delete mc` forgets one
    (docs/kubernetes.md): `federator forget` is refused there, FAILED_PRECONDITION, even for a cluster it could
    forget in standalone mode, and the cluster stays."""
    import grpc

    from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
    from federator.model import ClusterState

    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.disconnect(rec)
    rec.state, rec.lost_at = ClusterState.LOST, fed.clock()
    with serving(fed, kube=True) as address:
        assert main(["forget", "east-1", "--server", address, "--insecure"]) == 1
        assert "forget 'east-1' with `kubectl delete mc east-1` once it is Lost" in capsys.readouterr().err
        with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError) as err:
            jobs_pb2_grpc.ClusterServiceStub(channel).Forget(jobs_pb2.ForgetClusterRequest(cluster="east-1"))
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "Kubernetes mode" in (err.value.details() or "")
    assert "east-1" in fed.clusters


def test_uncordon_says_a_providers_maintenance_still_holds(capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    fed.report(fed.connect(cluster="east-1", region="east", labels={}),
               cluster("east-1", "east", pool("NVIDIA-H100", nodes=1)).capacity)
    fed.cordons.maintenance.reported("east-1", "driver upgrade", provider="acme", now=fed.clock())
    with serving(fed) as address:
        server = ["--server", address, "--insecure"]
        assert main(["cordon", "east-1", *server]) == 0
        assert main(["uncordon", "east-1", *server]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == (
            "cluster east-1 uncordoned (cordon ended); its provider still has it in maintenance: no new work until "
            "its agent stops asking")
        assert main(["get", "clusters", "-o", "wide", *server]) == 0
        out = capsys.readouterr().out.splitlines()
        assert "Ready,Cordoned" in out[1] and out[1].rstrip().endswith("provider maintenance: driver upgrade")


def test_cordon_from_until_is_a_maintenance_window_get_clusters_shows_ahead(capsys: pytest.CaptureFixture[str]) -> None:
    """`federator cordon --from --until` (server/maintenance_windows.py): the times as cli/times.py reads them,
    said back in the local zone; get clusters says MaintenanceAhead until it begins, -o wide and -o json its times."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    fed.report(fed.connect(cluster="east-1", region="east", labels={}),
               cluster("east-1", "east", pool("NVIDIA-H100", nodes=1)).capacity)
    start, end = time.time() + 86_400, time.time() + 90_000
    with serving(fed) as address:
        server = ["--server", address, "--insecure"]
        assert main(["cordon", "east-1", "--from", f"{start:.0f}", "--until", f"{end:.0f}", "--reason", "switch",
                     *server]) == 0
        out = capsys.readouterr().out
        assert f"; a maintenance window from {local_text(round(start))} until {local_text(round(end))})" in out
        assert main(["get", "clusters", *server]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[2] == "Ready,MaintenanceAhead"
        assert main(["get", "clusters", "-o", "wide", *server]) == 0
        assert f"anonymous: switch (window {local_text(round(start))} to {local_text(round(end))})" in \
            capsys.readouterr().out
        assert main(["get", "clusters", "-o", "json", *server]) == 0
        [doc] = json.loads(capsys.readouterr().out)
        assert (doc["cordoned"], doc["window_from"], doc["window_until"]) == (False, round(start), round(end))

        assert main(["cordon", "east-1", "--from", "1h", *server]) == 1  # an age: an hour ago, refused
        assert capsys.readouterr().err.startswith("error: window_from: ")  # the server's words, naming the field
        assert main(["cordon", "east-1", "--until", "next tuesday", *server]) == 2
        assert capsys.readouterr().err.startswith("error: --until: expected an ISO 8601 date or time")
        assert main(["uncordon", "east-1", *server]) == 0
        assert capsys.readouterr().out == "cluster east-1 uncordoned (cordon ended); it takes new work\n"
        assert main(["get", "clusters", *server]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[2] == "Ready"
