"""A federator's gRPC services on loopback for CLI tests: the CLI blocks, so the server's loop runs in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from federator.api.v1 import jobs_pb2_grpc
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import ClusterService, JobService


@contextmanager
def serving(fed: Federator, *, kube: bool = False) -> Iterator[str]:
    """JobService and ClusterService of `fed`, plaintext (every caller the admin); yields their address. `kube`:
    as `federator serve --kubeconfig` makes them (Kubernetes mode)."""
    loop = asyncio.new_event_loop()
    holder: dict[str, grpc.aio.Server] = {}

    async def serve() -> int:
        server = grpc.aio.server()
        auth = Authenticator(insecure=True)
        jobs_pb2_grpc.add_JobServiceServicer_to_server(JobService(fed, auth), server)
        jobs_pb2_grpc.add_ClusterServiceServicer_to_server(ClusterService(fed, auth, kube=kube), server)
        port = server.add_insecure_port("127.0.0.1:0")
        holder["server"] = server
        await server.start()
        return port

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)}"
    finally:
        if "server" in holder:
            asyncio.run_coroutine_threadsafe(holder["server"].stop(0), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
