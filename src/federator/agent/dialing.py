"""How long an agent waits for one address to answer its connect: a frozen federator must not hold it.

Why a module of its own: it is the agent channel's one option that is about dialing, not liveness (keepalive.py)
or sharing (security/tls.py's FRESH_CONNECTION). gRPC waits up to 20 s for a connection's HTTP/2 SETTINGS
frame (its "minimum connect timeout"), and a frozen process (a paused VM or cgroup, SIGSTOP) answers nothing
while its kernel still completes the TCP handshake. With two federator replicas given as one target list
(`ipv4:HOST1:PORT1,HOST2:PORT2`), gRPC's pick_first waited out the frozen leader for those 20 s before it
counted the list as failed: agents came back 11 s after the new leader served (HA QA F1).

gRPC calls the option `grpc.min_reconnect_backoff_ms`, but it is the connect deadline: each attempt is given the
larger of it and the current reconnect back-off, which FRESH_CONNECTION caps at 1 s. A TLS handshake fits in it
with room (a 300 ms round trip takes about 1 s to connect); a link whose round trip under load passes about 2 s
cannot connect within it, and could not within the Welcome's bound either (docs/operators.md, "Agents behind a
NAT or a slow wide-area link").
"""

from __future__ import annotations

AGENT_CONNECT_TIMEOUT_MS = 5_000
"""How long one address of the agent's target has to complete the connect (TCP, TLS, HTTP/2 SETTINGS)."""


def connect_deadline(timeout_ms: int = AGENT_CONNECT_TIMEOUT_MS) -> list[tuple[str, int]]:
    """The channel option that gives each connect attempt `timeout_ms` (gRPC's default is 20 s)."""
    return [("grpc.min_reconnect_backoff_ms", timeout_ms)]


__all__ = ["AGENT_CONNECT_TIMEOUT_MS", "connect_deadline"]
