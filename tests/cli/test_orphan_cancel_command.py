"""`federator get clusters` shows each cluster's orphans, and `federator cancel --orphans [--cluster C]` cancels
them now, against a real ClusterService (0.16.0; the rules over mTLS: tests/security/test_orphan_cancel.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from cli_support import serving

from federator.api.v1 import jobs_pb2_grpc
from federator.cli import main
from federator.cli.exit_codes import Exit
from federator.model import ClusterCapacity
from federator.server.cluster_service import ClusterService
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, pool
from support import cancels_sent

A, B = "lost-a.g1.east-1", "lost-b.g1.east-1"


def reported(*placement_ids: str) -> ClusterCapacity:
    return replace(cluster("x", "r", pool("NVIDIA-H100", nodes=2)).capacity, placement_ids=frozenset(placement_ids))


def test_get_clusters_counts_the_orphans_and_cancel_orphans_ends_them(capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")), orphan_grace=1800.0)
    east = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(east, reported(A, B))
    fed.report(fed.connect(cluster="west-1", region="west", labels={}), reported())
    with serving(fed) as address:
        server = ["--server", address, "--insecure"]
        assert main(["get", "clusters", *server]) == 0
        header, *rows = capsys.readouterr().out.splitlines()
        at = header.index("ORPHANS")  # the columns are aligned: the count starts where its header does
        assert {row.split()[0]: row[at:].split()[0] for row in rows} == {"east-1": "2", "west-1": "0"}
        assert main(["get", "clusters", "-o", "json", *server]) == 0
        assert {c["name"]: c["orphan_placements"] for c in json.loads(capsys.readouterr().out)} == {
            "east-1": 2, "west-1": 0}

        assert main(["cancel", "--orphans", "--cluster", "east-1", *server]) == 0
        assert capsys.readouterr().out == f"cluster east-1: cancelled 2 orphan placements ({A}, {B})\n"
        assert set(cancels_sent(east)) == {A, B}
        assert main(["get", "clusters", "east-1", "-o", "json", *server]) == 0
        assert json.loads(capsys.readouterr().out)[0]["orphan_placements"] == 0
        assert main(["cancel", "--orphans", *server]) == 0
        assert capsys.readouterr().out == "no orphans on any cluster: nothing cancelled\n"
        assert main(["cancel", "--orphans", "--cluster", "nosuch", *server]) == 3
        assert capsys.readouterr().err == ("error: cancel --orphans: cluster 'nosuch' is not a member cluster this "
                                           "federator knows (NOT_FOUND)\n")


@pytest.mark.parametrize(("flags", "said"), [
    (["--cluster", "east-1"], "--cluster goes with --orphans"),
    (["--orphans", "train-1"], "--orphans cancels placements of jobs the store has no record of: give no job, "
                               "--queue or filter"),
    (["--orphans", "--queue", "research"], "--orphans cancels placements of jobs the store has no record of: give "
                                           "no job, --queue or filter"),
], ids=["cluster-alone", "with-a-job", "with-a-queue"])
def test_orphans_flags_that_make_no_command_are_refused(flags: list[str], said: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cancel", *flags, "--server", "127.0.0.1:1", "--insecure"]) == 2
    assert capsys.readouterr().err == f"federator cancel: {said}\n"


def test_cancel_orphans_against_a_federator_before_0_16_says_what_does_the_same_there(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A federator of 0.15.0 has no ClusterService.CancelOrphans (the generated base answers UNIMPLEMENTED): the
    command names the version and the restart that does the same there, not a bare UNIMPLEMENTED status."""
    monkeypatch.setattr(ClusterService, "CancelOrphans", jobs_pb2_grpc.ClusterServiceServicer.CancelOrphans)
    fed = Federator(store=SqliteJobStore(Path(":memory:")), orphan_grace=1800.0)
    with serving(fed) as address:
        assert main(["cancel", "--orphans", "--server", address, "--insecure"]) == Exit.FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"error: the federator at {address} cannot cancel orphans: it is older than 0.16.0"), err
    assert "--orphan-grace 0" in err
