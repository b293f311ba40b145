"""`federator scale NAME --replicas N` against a real JobService: the new count, or the refusal naming the field."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from federator.api.v1 import jobs_pb2_grpc
from federator.cli import main
from federator.jobfile import parse_job
from federator.model import JobSpec
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import JobService
from federator.store import SqliteJobStore


def job(name: str, kind: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
                      "spec": {"kind": kind, "replicas": 2, "resources": {"cpu": "1"}}})


@pytest.fixture
def served() -> Iterator[tuple[Federator, str]]:
    """A federator's job service on loopback, its loop in a thread of its own (the CLI blocks)."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def serve() -> None:
        server = grpc.aio.server()
        jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, Authenticator(insecure=True)), server)
        holder["port"] = server.add_insecure_port("127.0.0.1:0")
        holder["server"] = server
        await server.start()
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)
    started.wait(10)
    try:
        yield fed, f"127.0.0.1:{holder['port']}"
    finally:
        server = holder["server"]
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(timeout=10)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_scale_sets_the_new_count_and_says_so(served: tuple[Federator, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    fed, address = served
    serve = fed.submit(job("serve", "inference"))
    assert main(["scale", "serve", "--replicas", "5", "--server", address, "--insecure"]) == 0
    assert capsys.readouterr().out == f"job {serve.job_id} Pending, 5 replicas\n"
    assert fed.jobs[serve.job_id].spec.replicas == 5


def test_a_refused_scale_names_the_field(served: tuple[Federator, str], capsys: pytest.CaptureFixture[str]) -> None:
    fed, address = served
    train = fed.submit(job("train", "training"))
    assert main(["scale", "train", "--replicas", "5", "--server", address, "--insecure"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: spec.kind: ") and "gang size is fixed" in err and "(FAILED_PRECONDITION)" in err
    assert fed.jobs[train.job_id].spec.replicas == 2


def test_replicas_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["scale", "serve"])
    assert "--replicas" in capsys.readouterr().err


def test_scaling_to_one_says_one_replica(served: tuple[Federator, str], capsys: pytest.CaptureFixture[str]) -> None:
    fed, address = served
    serve = fed.submit(job("one", "inference"))
    assert main(["scale", "one", "--replicas", "1", "--server", address, "--insecure"]) == 0
    assert capsys.readouterr().out == f"job {serve.job_id} Pending, 1 replica\n"
