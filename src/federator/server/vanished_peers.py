"""A peer that went away while the federator wrote to its call: one INFO line, not grpc's ERROR with a traceback.

Why: outside fuzz QA F3. An agent that never read its stream, or a Watch client that never read while jobs changed,
then cancelled its call (or its process died), left "ERROR grpc._cython.cygrpc: ExecuteBatchError raised in core by
servicer method [/federator.v1.AgentService/Connect]" and a 9-frame traceback in the serve log, one per call. Any
peer can produce that at will, and it reads as a federator fault to whoever pages on ERROR lines, while nothing is
wrong: the call ends as a cancelled one does (the agent's cluster Partitioned, the Watch closed).

The servicer cannot catch it: grpc aio (1.85, server.pyx.pxi `_finish_handler_with_stream_responses`) writes each
message a streaming handler yields itself, and when the peer's cancellation has not reached the server yet the
write fails with ExecuteBatchError, which `_handle_exceptions` logs with `_LOGGER.exception`. So a filter on that
logger (`GRPC_LOGGER`) rewrites exactly those records, an ExecuteBatchError, into one INFO line naming the method;
every other grpc record passes as it is. Installed with the DecodeGuard every federator gRPC server has
(server/edge.py `decode_guard`).
"""

from __future__ import annotations

import logging
import re

GRPC_LOGGER = "grpc._cython.cygrpc"
_METHOD = re.compile(r"servicer method \[(?P<method>[^\]]*)\]")


class VanishedPeer(logging.Filter):
    """grpc's ERROR for a write to a call whose peer went away, as one INFO line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or type(exc).__name__ != "ExecuteBatchError" or record.levelno < logging.ERROR:
            return True
        found = _METHOD.search(record.getMessage())
        record.msg = "a peer went away while the federator wrote to its call %s: the call ended as a cancelled one " \
                     "does (grpc ExecuteBatchError)"
        record.args = (found.group("method") if found else "(unknown method)",)
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install() -> None:
    """Put the filter on grpc's logger, once."""
    logger = logging.getLogger(GRPC_LOGGER)
    if not any(isinstance(f, VanishedPeer) for f in logger.filters):
        logger.addFilter(VanishedPeer())


__all__ = ["GRPC_LOGGER", "VanishedPeer", "install"]
