"""HTTP/2 keepalive: the pings an agent sends, and the ping policy the federator's server must grant them.

The two sides are one contract, so they live here together. An agent pings its federator every
`AGENT_KEEPALIVE_MS` (agent/agent.py) to notice a dead link below the stream's own lease. gRPC's server
counts a ping that comes sooner than its minimum interval, without data sent meanwhile, as a strike, and
past `max_ping_strikes` it ends the connection with GOAWAY ENHANCE_YOUR_CALM "too_many_pings"; the client
then doubles its keepalive time and logs a raw C-core ERROR line. The server's default minimum is 5
minutes, so an agent's 10 s pings were strikes: its log got those lines about 40 s into a quiet stream, after
every federator restart and failover, and the keepalive backstop that ran was not the documented one.

The server's option had been set under a name gRPC core does not know
(`grpc.http2.min_recv_ping_interval_without_data_ms`; the C macro is GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_
WITHOUT_DATA_MS, but its string is `grpc.http2.min_ping_interval_without_data_ms`), and gRPC ignores channel
arguments it does not know, silently. `server_ping_policy` builds the options from the agents' keepalive,
so the two cannot drift apart again.
"""

from __future__ import annotations

AGENT_KEEPALIVE_MS = 10_000
"""How often an agent pings the federator (a transport-level backstop: the stream's lease usually notices first)."""
AGENT_KEEPALIVE_TIMEOUT_MS = 5_000
"""How long an agent waits for a ping's ack before it drops the connection."""
MAX_PING_STRIKES = 2
"""gRPC's default: pings sooner than the policy allows, tolerated before GOAWAY. Kept, so a client pinging far
faster than any agent does is still cut off."""


def agent_keepalive(interval_ms: int = AGENT_KEEPALIVE_MS, timeout_ms: int = AGENT_KEEPALIVE_TIMEOUT_MS
                    ) -> list[tuple[str, int]]:
    """An agent channel's keepalive options: a ping every `interval_ms`, with or without a call, data or not."""
    return [("grpc.keepalive_time_ms", interval_ms), ("grpc.keepalive_timeout_ms", timeout_ms),
            ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]


def server_ping_policy(agent_interval_ms: int = AGENT_KEEPALIVE_MS) -> list[tuple[str, int]]:
    """The federator server's options that accept agents pinging every `agent_interval_ms`: the minimum interval
    is half of it, so a ping a little early (timers, a busy loop) is no strike; pings without a call are allowed
    (an agent between streams keeps its connection)."""
    return [("grpc.http2.min_ping_interval_without_data_ms", agent_interval_ms // 2),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_ping_strikes", MAX_PING_STRIKES)]


AGENT_KEEPALIVE = agent_keepalive()
SERVER_PING_POLICY = server_ping_policy()

__all__ = ["AGENT_KEEPALIVE", "AGENT_KEEPALIVE_MS", "SERVER_PING_POLICY", "agent_keepalive", "server_ping_policy"]
