"""The seam through which Submit asks whether a job may go to its `spec.namespace` (Kubernetes mode).

In SQLite mode a job's namespace is a name and nothing more: there is no gate. In Kubernetes mode a job
submitted over gRPC becomes a FederatedJob in that namespace of the host cluster, visible to (and holding
the name against) whoever works there, so the Queue's `namespaceSelector`, which the kubectl path applies,
must hold for the gRPC path too (`backends/kube/namespace_gate.py` implements it). Kept a `Protocol` so
`server/job_service.py` imports nothing of Kubernetes.
"""

from __future__ import annotations

from typing import Protocol

from federator.model import JobSpec
from federator.security.authz import Denied


class NamespaceGate(Protocol):
    async def refusal(self, spec: JobSpec) -> Denied | None:
        """Why a job of this spec may not be made in its namespace, or None. Raises StoreUnavailable when
        that cannot be known now (the host's API server is away): retryable, and nothing was stored."""


__all__ = ["NamespaceGate"]
