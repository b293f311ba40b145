"""A federator's gRPC services on loopback for CLI tests: the CLI blocks, so the server's loop runs in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from federator.api.v1 import identity_pb2_grpc, jobs_pb2_grpc
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.identity_service import IdentityService
from federator.server.services import ClusterService, JobService


@dataclass(frozen=True, slots=True)
class Served:
    """A federator served on loopback: its address, the loop its services run on (a test changes the federator
    there, while the CLI waits on a stream), and its JobService (how many Watch streams are open)."""

    address: str
    loop: asyncio.AbstractEventLoop
    jobs: JobService


@contextmanager
def serving(fed: Federator, *, kube: bool = False, identity: bool = False,
            audit: AuditLog | None = None) -> Iterator[str]:
    """JobService and ClusterService of `fed`, plaintext (every caller the admin); yields their address. `kube`:
    as `federator serve --kubeconfig` makes them (Kubernetes mode); `identity`: IdentityService too (WhoAmI and
    its features: without it the CLI takes the federator for one that lists none); `audit`: their audit log."""
    with served(fed, kube=kube, identity=identity, audit=audit) as there:
        yield there.address


@contextmanager
def served(fed: Federator, *, kube: bool = False, identity: bool = False,
           audit: AuditLog | None = None) -> Iterator[Served]:
    """As `serving`, with the loop and the JobService."""
    loop = asyncio.new_event_loop()
    holder: dict[str, grpc.aio.Server] = {}

    async def serve() -> tuple[int, JobService]:
        server = grpc.aio.server()
        auth = Authenticator(insecure=True)
        jobs = JobService(fed, auth, audit=audit)
        jobs_pb2_grpc.add_JobServiceServicer_to_server(jobs, server)
        if identity:
            identity_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityService(jobs), server)
        jobs_pb2_grpc.add_ClusterServiceServicer_to_server(ClusterService(fed, auth, kube=kube), server)
        port = server.add_insecure_port("127.0.0.1:0")
        holder["server"] = server
        await server.start()
        return port, jobs

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        port, jobs = asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)
        yield Served(f"127.0.0.1:{port}", loop, jobs)
    finally:
        if "server" in holder:
            asyncio.run_coroutine_threadsafe(holder["server"].stop(0), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
