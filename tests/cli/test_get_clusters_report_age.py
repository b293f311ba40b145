"""REPORT AGE of `federator get clusters` is the federator's own reckoning (outside SRE soak, finding 6).

After the host's clock stepped forward 40 s, the federator kept its steady clock (steady_clock.py) and the CLI
subtracted the reports' times from its own clock: every cluster showed a report age of about 40 s, every time,
as if every agent had gone silent, until the federator restarted. The server now says the age
(ClusterStatus.report_age_seconds).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import grpc
import pytest

from federator.api.v1 import jobs_pb2_grpc
from federator.cli import main
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import ClusterService
from federator.store import SqliteJobStore

from builders import cluster, pool


def test_report_age_is_the_federators_when_its_clock_and_the_clients_differ(
        capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")), clock=lambda: time.time() - 40.0)
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool("NVIDIA-H100", nodes=2)).capacity)
    loop = asyncio.new_event_loop()
    holder: dict[str, grpc.aio.Server] = {}

    async def serve() -> int:
        server = grpc.aio.server()
        jobs_pb2_grpc.add_ClusterServiceServicer_to_server(ClusterService(fed, Authenticator(insecure=True)), server)
        port = server.add_insecure_port("127.0.0.1:0")
        holder["server"] = server
        await server.start()
        return port

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        port = asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)
        assert main(["get", "clusters", "--server", f"127.0.0.1:{port}", "--insecure"]) == 0
    finally:
        if "server" in holder:
            asyncio.run_coroutine_threadsafe(holder["server"].stop(0), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    header, row = capsys.readouterr().out.splitlines()[:2]
    age = row.split()[-1]
    assert header.split()[-1] == "AGE" and age.endswith("s") and float(age[:-1]) < 20, row
