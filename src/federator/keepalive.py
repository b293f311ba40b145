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
SERVER_KEEPALIVE_MS = 60_000
"""How often the federator pings each connection it serves, agents' and clients', calls or none. gRPC's server
default is 2 hours: a peer gone behind a NAT or firewall that dropped its flow silently (no FIN, no RST) left its
connection open on the federator that long, one per agent per half-open partition, and every attempt the agent made
meanwhile that got through the handshake before the link went silent (outside WAN QA W5). Its streams end by the
lease; the connection itself only by a ping that is not answered."""
SERVER_PING_TIMEOUT_MS = 60_000
"""How long the federator waits for any ping's ack before it closes the connection (gRPC's
`grpc.http2.ping_timeout_ms`; in grpcio 1.85 that, not `grpc.keepalive_timeout_ms`, ends a connection whose peer
read the handshake and then went silent). gRPC's default, said here: shorter, a saturated slow uplink, where a ping
waits behind the agent's reports, would lose live connections (outside WAN QA W2 saw `ping timeout` at a minute)."""
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
    (an agent between streams keeps its connection). And its own pings (SERVER_KEEPALIVE_MS), with or without a
    call, so a connection whose peer vanished is closed."""
    return [("grpc.http2.min_ping_interval_without_data_ms", agent_interval_ms // 2),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_ping_strikes", MAX_PING_STRIKES),
            ("grpc.keepalive_time_ms", SERVER_KEEPALIVE_MS),
            ("grpc.http2.ping_timeout_ms", SERVER_PING_TIMEOUT_MS)]


AGENT_KEEPALIVE = agent_keepalive()
SERVER_PING_POLICY = server_ping_policy()

__all__ = ["AGENT_KEEPALIVE", "AGENT_KEEPALIVE_MS", "SERVER_KEEPALIVE_MS", "SERVER_PING_POLICY",
           "SERVER_PING_TIMEOUT_MS", "agent_keepalive", "server_ping_policy"]
