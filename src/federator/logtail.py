"""The contract's bounds on a job's output (agent.proto LogsRequest/LogsReply, jobs.proto Logs) and the one way a
text is cut to them.

Why a module of its own: the federator (server/logs.py: an agent's reply, never trusted), the agent (agent/logs.py:
its own reply, whatever its backend read) and the simulated cluster (its events as output) each hold output to the
same bounds and cut it the same way, keeping its end (a tail's newest lines). Written in each, the three had begun
to differ; here they are one.
"""

from __future__ import annotations

MAX_TAIL_LINES = 10_000
"""Lines per replica a LogsRequest may ask at most."""
MAX_LIMIT_BYTES = 512 * 1024
"""The whole answer's text at most: with the names around it, under the 1 MiB message limit of a default server."""
MAX_REPLICA_LOGS = 256
"""ReplicaLogs in one LogsReply at most; more are dropped."""
NAME_CHARS = 253
"""A pod's or container's name at most (a Kubernetes object name)."""
ERROR_CHARS = 4096
"""An error's words at most."""
BUSY = "busy"
"""How LogsReply.error begins when an agent has more LogsRequests than it reads at once (agent.proto): the
federator's follow skips that beat (server/log_follow.py) rather than telling the user."""


def tail_bytes(text: str, limit: int) -> str:
    """The last `limit` bytes of `text` (UTF-8), cut on a character boundary; `text` itself when it fits."""
    raw = text.encode()
    return text if len(raw) <= limit else raw[len(raw) - limit:].decode(errors="ignore")


__all__ = ["BUSY", "ERROR_CHARS", "MAX_LIMIT_BYTES", "MAX_REPLICA_LOGS", "MAX_TAIL_LINES", "NAME_CHARS", "tail_bytes"]
