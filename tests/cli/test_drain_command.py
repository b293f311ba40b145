"""`federator drain CLUSTER --reason ... [--yes]` against a real ClusterService, and what `get clusters` and
`uncordon` then say."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import serving

from federator.cli import main
from federator.model import JobPhase
from federator.model.cordon import Drain
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, job, pool


def test_drain_asks_for_yes_then_moves_the_jobs_and_uncordon_ends_it(capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    fed.report(fed.connect(cluster="east-1", region="east", labels={}),
               cluster("east-1", "east", pool("NVIDIA-H100", nodes=1)).capacity)
    train = fed.submit(job("train", replicas=1, gpus=8))
    fed.schedule_once()
    assert [p.cluster for p in train.placements] == ["east-1"]
    with serving(fed) as address:
        server = ["--server", address, "--insecure"]
        assert main(["drain", "east-1", "--reason", "hardware swap", *server]) == 2
        assert capsys.readouterr().err == ("federator drain: cluster east-1 holds 1 placement(s) of federated jobs; "
                                           "nothing drained: pass --yes to requeue them elsewhere\n")
        assert fed.cordons.names() == frozenset()

        assert main(["drain", "east-1", "--reason", "hardware swap", "--yes", *server]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("cluster east-1 draining (by anonymous at ")
        assert out[0].endswith(f": hardware swap): 1 job(s) to move: {train.job_id}")
        assert main(["get", "clusters", *server]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[2] == "Ready,Cordoned,Draining"

        assert fed.drains.turn() == 1  # the loop's turn
        assert train.phase is JobPhase.PENDING and str(train.pending_reason) == \
            "Drained: cluster east-1 drained by anonymous: hardware swap"
        assert main(["get", "clusters", "-o", "wide", *server]) == 0
        row = capsys.readouterr().out.splitlines()[1]
        assert row.split()[2] == "Ready,Cordoned,Drained"
        assert row.rstrip().endswith("drained by anonymous: hardware swap (0 job(s) left)")
        assert main(["drain", "east-1", "--reason", "other words", *server]) == 0  # nothing runs: no --yes needed
        assert capsys.readouterr().out.startswith("cluster east-1 was draining already (by anonymous at ")
        assert fed.cordons.draining()["east-1"].reason == "hardware swap"

        assert main(["uncordon", "east-1", *server]) == 0
        assert capsys.readouterr().out == "cluster east-1 uncordoned (cordon and drain ended); it takes new work\n"
        assert main(["get", "clusters", *server]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[2] == "Ready"


def test_a_drain_that_waits_for_its_agent_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool("NVIDIA-H100", nodes=1)).capacity)
    train = fed.submit(job("train", replicas=1, gpus=8))
    fed.schedule_once()
    fed.disconnect(rec)
    with serving(fed) as address:
        assert main(["drain", "east-1", "--yes", "--server", address, "--insecure"]) == 0
    got = capsys.readouterr()
    assert got.out.splitlines()[0].endswith(f"): 1 job(s) to move: {train.job_id}")
    assert "warning: the drain waits: the agent of cluster east-1 is not connected (Partitioned)" in got.err
    assert fed.drains.turn() == 0 and [p.cluster for p in train.placements] == ["east-1"]
    assert fed.cordons.draining() == {"east-1": Drain("anonymous", fed.cordons.draining()["east-1"].at)}
