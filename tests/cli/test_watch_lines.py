"""`federator watch` prints what changed for a user, once: the phase, the clusters, and why the job waits."""

from __future__ import annotations

import pytest

from federator.api import convert
from federator.api.v1 import types_pb2
from federator.cli import build_parser, main
from federator.cli.exit_codes import Exit
from federator.cli.watch import _lines, selection, watch_lines
from federator.model import Job, JobId, JobPhase, Placement, PlacementId, Reason, ReasonCode

from builders import job as spec


def _job(phase: JobPhase, *, cluster: str = "", message: str = "", reason: Reason | None = None) -> Job:
    placements = [Placement(PlacementId(f"train.g1.{cluster}"), JobId("train"), cluster, "east", 2, "A100", 1)] \
        if cluster else []
    return Job(JobId("train"), spec("train", replicas=2, gpus=8), 0.0, phase=phase, pending_reason=reason,
               placements=placements, message=message)


def test_each_line_says_something_new_and_a_placed_job_says_what_it_waits_for() -> None:
    refused = Reason(ReasonCode.REFUSED_BY_CLUSTER, "member-a stopped placement train.g1.member-a: refused: gang "
                                                     "timeout on member-a")
    kueue = "waiting for Kueue admission on member-b: insufficient quota"
    announced = [
        _job(JobPhase.PLACED, cluster="member-a"),
        _job(JobPhase.PLACED, cluster="member-a"),  # a placement's own phase changed: nothing a line shows
        _job(JobPhase.PENDING, reason=refused),
        _job(JobPhase.PLACED, cluster="member-b", message=kueue),
        _job(JobPhase.PLACED, cluster="member-b", message=kueue),
        _job(JobPhase.RUNNING, cluster="member-b", message="2 replicas running on member-b"),
        _job(JobPhase.SUCCEEDED, cluster="member-b", message="all placements succeeded"),
    ]
    assert list(watch_lines(announced)) == [
        "train Placed member-a",
        f"train Pending - {refused}",
        f"train Placed member-b {kueue}",
        "train Running member-b 2 replicas running on member-b",
        "train Succeeded member-b all placements succeeded",
    ]


def test_the_same_line_of_another_job_is_printed() -> None:
    other = Job(JobId("serve"), spec("serve"), 0.0)
    assert len(list(watch_lines([_job(JobPhase.PENDING), other]))) == 2


def test_a_watch_keeps_the_jobs_of_a_queue_and_name_prefix_only() -> None:
    """Outside QA, teams from Armada, M3: `armadactl watch QUEUE JOBSET` follows one job set; `federator watch`
    followed one job or every job. `--queue` and `--name-prefix` keep those `get jobs` and `cancel` would take."""
    def pb(name: str, queue: str) -> types_pb2.Job:
        return convert.job_to_pb(Job(JobId(f"{name}-1a2b3c"), spec(name, queue=queue), 0.0))

    args = build_parser().parse_args(["watch", "--queue", "team-b", "--name-prefix", "js1-"])
    stream = [pb("js1-a", "team-b"), pb("js1-b", "team-a"), pb("js2-a", "team-b"), pb("js1-c", "team-b")]
    lines = list(_lines(stream, {}, {}, after_cut=False, server="s:1", only=selection(args)))
    assert [line.split()[0] for line in lines] == ["js1-a-1a2b3c", "js1-c-1a2b3c"]
    every = build_parser().parse_args(["watch"])
    assert len(list(_lines(stream, {}, {}, after_cut=False, server="s:1", only=selection(every)))) == 4


def test_a_watch_of_one_job_refuses_the_selectors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "js1-a", "--queue", "team-b", "--server", "127.0.0.1:1", "--insecure"]) == Exit.USAGE
    assert "go with `watch` of every job, not one job" in capsys.readouterr().err


def test_a_watch_whose_selectors_get_jobs_would_refuse_says_so_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    """`watch --namespace 'Bad NS'` (or a bad --queue, or an array nobody may see) printed nothing and waited for
    ever: the CLI keeps the Watch's jobs itself, and nothing checked what it keeps them by (outside QA N1). Now the
    federator checks them as for `get jobs`: the field named, exit as `get jobs` exits; a good selector watches."""
    import asyncio

    from tests.server.test_services_edge import served

    async def watch(target: str, *flags: str) -> int:
        return await asyncio.to_thread(main, ["watch", *flags, "--insecure", "--server", target])

    async def main_() -> None:
        async with served() as s:
            assert await watch(s.target, "--namespace", "Bad NS") == Exit.FAILED
            assert "filter.namespace" in capsys.readouterr().err
            assert await watch(s.target, "--queue", "Bad Q") == Exit.FAILED
            assert "queue" in capsys.readouterr().err
            assert await watch(s.target, "--array", "nosuch-000000") == Exit.NOT_FOUND
            assert "no task of array 'nosuch-000000'" in capsys.readouterr().err

    asyncio.run(main_())
