"""The federator's gRPC transports, one module per service.

The only server modules that touch generated stubs translate wire messages to domain calls on `Federator` and
domain errors to gRPC status codes: `edge` (authentication, size checks, undecodable input), `agent_service`,
`job_service`, `cluster_service`, `identity_service` and `usage_service`. This module names the three the
server and its tests start together.
"""

from federator.server.agent_service import AgentService
from federator.server.cluster_service import ClusterService
from federator.server.edge import Edge, decode_guard
from federator.server.job_service import JobService

__all__ = ["AgentService", "ClusterService", "Edge", "JobService", "decode_guard"]
