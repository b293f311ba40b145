"""`federator get jobs -l`, `watch -l` and `cancel -l` (kubectl's label selector; outside QA, teams from Armada, M4:
`-l armada/job-set=js1` is an Armada job set). Over real gRPC on loopback: the federator filters (its WhoAmI lists
"jobs.label_selector"); a bad selector is one line naming -l, exit 2, before anything is sent; against a federator
before 0.17.0, `get jobs` keeps the matching jobs itself (the selector is missing from applied_filter) and `cancel`
refuses, naming the version, since that federator would ignore the selector and cancel the whole queue."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from federator.api import convert
from federator.api.v1 import identity_pb2_grpc, jobs_pb2_grpc
from federator.cli import build_parser, main
from federator.cli.exit_codes import Exit
from federator.cli.watch import _lines, selection
from federator.model import Job, JobId, JobPhase
from federator.security.auth import Authenticator, RevocationList
from federator.server.federator import Federator
from federator.server.identity_service import IdentityService
from federator.server.services import JobService
from federator.store import SqliteJobStore
from tests.cli.test_get_jobs_filters import old_federator
from tests.server.test_label_selector_grpc import _fleet, labelled
from tests.server.test_services_edge import channel, served

from builders import job as spec


@asynccontextmanager
async def with_whoami() -> AsyncIterator[tuple[str, Federator]]:
    """A federator of this release, insecure, with its IdentityService (WhoAmI lists its features)."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0)
    edge = JobService(fed, Authenticator(insecure=True, revocations=RevocationList(None, interval=0.0)))
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(edge, server)
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityService(edge), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", fed
    finally:
        await server.stop(0)


async def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _names(out: str) -> list[str]:
    return [doc["metadata"]["name"] for doc in json.loads(out)]


def test_get_jobs_l_lists_the_selectors_jobs_from_a_new_and_an_old_federator(capsys: pytest.CaptureFixture[str]) \
        -> None:
    async def main_() -> None:
        async with served() as s, channel(s.target) as ch:
            await _fleet(jobs_pb2_grpc.JobServiceStub(ch))
            code, out, _ = await _run(capsys, "get", "jobs", "-l", "armada/job-set=js1,app!=llama", "-o", "json",
                                      "--insecure", "--server", s.target)
            assert code == 0 and _names(out) == ["a-1", "a-2"]
            code, out, _ = await _run(capsys, "get", "jobs", "--selector", "!armada/job-set", "-o", "json",
                                      "--insecure", "--server", s.target)
            assert code == 0 and _names(out) == ["c-0"]
            async with old_federator(list(s.fed.jobs.values())) as (target, old):  # 0.16.0: no label_selector
                code, out, _ = await _run(capsys, "get", "jobs", "-l", "armada/job-set=js1", "-o", "json",
                                          "--insecure", "--server", target)
                assert code == 0 and _names(out) == ["a-0", "a-1", "a-2"]  # kept by the CLI itself
                assert old.requests[0].filter.label_selector == "armada/job-set=js1"  # asked; not applied

    asyncio.run(main_())


@pytest.mark.parametrize(("command", "said"), [
    (["get", "jobs", "-l", "app in (a,b)"], "set-based requirements (in, notin) are not supported"),
    (["watch", "-l", "app=x,,b"], "empty requirement"),
    (["cancel", "--queue", "default", "-l", "=x"], "no label key before '='"),
])
def test_a_bad_selector_is_one_line_naming_l_and_exit_2(command: list[str], said: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--insecure", "--server", "127.0.0.1:1"])  # nothing listens: nothing was sent
    assert exit_.value.code == Exit.USAGE
    err = capsys.readouterr().err.splitlines()[-1]
    assert "argument -l/--selector" in err and said in err


def test_watch_l_keeps_the_jobs_whose_labels_match() -> None:
    def pb(name: str, **labels: str) -> object:
        return convert.job_to_pb(Job(JobId(f"{name}-1a2b3c"),
                                     dataclasses.replace(spec(name), labels=tuple(sorted(labels.items()))), 0.0))

    args = build_parser().parse_args(["watch", "-l", "set=js1"])
    stream = [pb("a", set="js1"), pb("b", set="js2"), pb("c"), pb("d", set="js1")]
    lines = list(_lines(stream, {}, {}, after_cut=False, server="s:1", only=selection(args)))  # type: ignore[arg-type]
    assert [line.split()[0] for line in lines] == ["a-1a2b3c", "d-1a2b3c"]


def test_cancel_l_cancels_the_selectors_jobs_and_refuses_an_old_federator(capsys: pytest.CaptureFixture[str]) -> None:
    async def main_() -> None:
        async with with_whoami() as (target, fed):
            async with channel(target) as ch:
                await _fleet(jobs_pb2_grpc.JobServiceStub(ch))
                await jobs_pb2_grpc.JobServiceStub(ch).Submit(labelled("q-0", queue="other", armada__job_set="js1"))
            code, out, err = await _run(capsys, "cancel", "-l", "armada/job-set=js1", "--yes",
                                        "--insecure", "--server", target)
            assert code == Exit.USAGE and "--queue" in err  # a selector does not stand for a queue
            code, out, err = await _run(capsys, "cancel", "--queue", "default", "-l", "armada/job-set=js1", "--yes",
                                        "--insecure", "--server", target)
            assert code == 0, err
            assert out.startswith("cancelled 3 of 3 jobs of queue 'default', labels 'armada/job-set=js1'"), out
            phases = {j.spec.name: j.phase for j in fed.jobs.values()}
            assert [n for n, p in sorted(phases.items()) if p is JobPhase.CANCELLED] == ["a-0", "a-1", "a-2"]
            code, out, err = await _run(capsys, "cancel", "--all-queues", "-l", "armada/job-set", "--yes",
                                        "--insecure", "--server", target)
            assert code == 0 and out.startswith("cancelled 2 of 2 jobs of every queue"), out  # b-0 and q-0
        async with served() as s, channel(s.target) as ch:  # no WhoAmI, no "jobs.label_selector": an older one
            await _fleet(jobs_pb2_grpc.JobServiceStub(ch))
            code, out, err = await _run(capsys, "cancel", "--queue", "default", "-l", "armada/job-set=js1", "--yes",
                                        "--insecure", "--server", s.target)
            assert code == Exit.USAGE and out == ""
            assert err.strip() == ("federator cancel: -l needs a federator of 0.17.0 or later (this one does not list "
                                   "jobs.label_selector in `federator whoami`, and would cancel every job the rest of "
                                   "the filter takes); nothing cancelled")
            assert not any(j.phase is JobPhase.CANCELLED for j in s.fed.jobs.values())  # nothing cancelled

    asyncio.run(main_())


def test_l_goes_with_a_queue_not_with_one_job_nor_orphans(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, said in ((["cancel", "train-1", "-l", "app=x"], "-l select among the jobs of --queue or --all-queues, "
                                                               "not among jobs named (train-1)"),
                       (["cancel", "--orphans", "-l", "app=x"], "--orphans cancels placements of jobs the store has "
                                                                "no record of"),
                       (["watch", "train-1", "-l", "app=x"], "--array and -l go with `watch` of every job"),
                       # -l alone: the hint names -l among what --all-queues takes (outside QA N6: it did not)
                       (["cancel", "-l", "app=x"], "--all-queues (with --owner, --name-prefix, --phase, -l)")):
        assert main([*argv, "--insecure", "--server", "127.0.0.1:1"]) == Exit.USAGE
        assert said in capsys.readouterr().err
