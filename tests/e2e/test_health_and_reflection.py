"""A real `federator serve` answers grpc.health.v1 for each service name, implements health List, and serves
reflection only when asked (issue 13, item 11). The clients are generic: they know the services only by name."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from federator.local import LocalFederation
from federator.server.health import SERVICE_NAMES

pytestmark = pytest.mark.e2e


def services_by_reflection(target: str) -> list[str]:
    with grpc.insecure_channel(target) as ch:
        replies = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
        return sorted(s.name for r in replies for s in r.list_services_response.service)


@pytest.mark.parametrize("reflection", [False, True], ids=["default", "with-reflection"])
def test_health_answers_every_service_and_lists_them_and_reflection_is_behind_a_flag(
        tmp_path: Path, reflection: bool) -> None:
    fed = LocalFederation(workdir=tmp_path / "fed", tls=False, serve_args=["--reflection"] if reflection else [])
    fed.start_server()
    try:
        assert set(SERVICE_NAMES) >= {"federator.v1.AgentService", "federator.v1.JobService",
                                      "federator.v1.ClusterService"}
        with grpc.insecure_channel(fed.grpc_target) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            for name in ("", *SERVICE_NAMES):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
            listed = stub.List(health_pb2.HealthListRequest(), timeout=10)
            assert set(listed.statuses) == {"", *SERVICE_NAMES}
            assert {s.status for s in listed.statuses.values()} == {health_pb2.HealthCheckResponse.SERVING}
        if reflection:
            assert set(services_by_reflection(fed.grpc_target)) >= {*SERVICE_NAMES, "grpc.health.v1.Health"}
        else:
            with pytest.raises(grpc.RpcError) as err:
                services_by_reflection(fed.grpc_target)
            assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
        assert "Traceback" not in (fed.workdir / "federator.log").read_text()
    finally:
        fed.stop()
