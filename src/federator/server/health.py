"""gRPC health (`grpc.health.v1`) for every service the federator serves, and server reflection behind a flag.

A load balancer or a client library checks a service by its full name
(`federator.v1.JobService`); answering only the empty name leaves them
NOT_FOUND. `List` (added to grpc.health.v1 after the grpcio servicer we build
on) is answered here instead of UNIMPLEMENTED. Reflection lets `grpcurl` and
other generic clients discover the API without the .proto files; it is off by
default (`federator serve --reflection`) since it tells anyone who connects
what the server offers.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from federator.api.v1 import agent_pb2, identity_pb2, jobs_pb2, queues_pb2, usage_pb2

SERVICE_NAMES: tuple[str, ...] = tuple(
    svc.full_name for module in (agent_pb2, jobs_pb2, usage_pb2, identity_pb2, queues_pb2)
    for svc in module.DESCRIPTOR.services_by_name.values()
)
"""Every federator service by its full name, as health checks and reflection name them."""


class Health(health.aio.HealthServicer):
    """The grpcio health servicer, with List."""

    async def List(self, request: health_pb2.HealthListRequest,  # noqa: N802 - gRPC method name
                   context: grpc.aio.ServicerContext) -> health_pb2.HealthListResponse:
        statuses = {name: health_pb2.HealthCheckResponse(status=status)
                    for name, status in self._server_status.items()}
        return health_pb2.HealthListResponse(statuses=statuses)


async def add_health(server: grpc.aio.Server, *, reflect: bool = False,
                     names: Iterable[str] = SERVICE_NAMES) -> Health:
    """Register health (SERVING for "" and every service name) and, with `reflect`, server reflection."""
    servicer = Health()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", *names):
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if reflect:
        reflection.enable_server_reflection(
            (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)
    return servicer


__all__ = ["SERVICE_NAMES", "Health", "add_health"]
