"""What an agent is told at its start: the command line's flags (cli/agent.py, backends/kube/main.py), or a test's.

Why a module of its own: every part of the agent (agent/session.py, reconnect.py, orders.py) reads it, and
agent/agent.py, which builds them all, imports them; here none of them imports agent.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from federator.security.tls import TlsFiles


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """What `federator agent` was started with: the member it speaks for and how it reaches the federator.

    Frozen: the agent, its session and its order handler share one, and none of them may change what the
    others read (a reconnect reads the same target, TLS files and labels as the first connection did)."""

    cluster: str
    region: str
    target: str
    labels: dict[str, str] = field(default_factory=dict)
    report_interval: float = 2.0
    max_backoff: float = 5.0
    tls: TlsFiles | None = None  # None: plaintext (the federator must run with --insecure)
    fence_after: float = 0.0  # > 0: stop every placement after this long without the federator
    metrics_listen: str = ""  # HOST:PORT of /metrics, /healthz, /readyz; empty: no endpoint
    metrics_token_file: Path | None = None  # set: /metrics asks for this bearer token (security/metrics_token.py)
    ready_file: Path | None = None  # written with the endpoint's bound address once it serves
    # Non-empty: the provider's reason for keeping new federated work off this cluster, in every report
    # (agent.proto CapacityReport.maintenance, server/maintenance.py); what runs here stays.
    maintenance: str = ""
    # False (--no-logs): the provider keeps its pods' output in the member; the Hello lists no "logs" feature and
    # the federator tells users "cluster X does not serve logs" (agent/logs.py).
    serve_logs: bool = True


__all__ = ["AgentConfig"]
