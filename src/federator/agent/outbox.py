"""What the agent has to send the federator on the current stream: a bounded queue, reports coalesced.

Why a module of its own: three parts of the agent write to the stream (the orders' acks, the placements' updates,
the session's reports) and one reads it (the session's writer); this is the one seam between them, so none holds
another to queue a message. It is bounded: a federator that does not read is not buffered for without end, the
stream is reset instead, and the next stream's re-sync carries every placement's phase again.
"""

from __future__ import annotations

import asyncio
import logging

from federator.api.v1 import agent_pb2

log = logging.getLogger("federator.agent")
OUTBOX_LIMIT = 10_000
"""Phase updates queued for the federator at most; past that the stream is reset and re-synced."""


class Outbox:
    """The messages queued for the current stream; None in the queue ends it (the session starts a new one)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[agent_pb2.AgentMessage | None] = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        self._report_queued = False

    def renew(self) -> None:
        """A new stream: messages queued for a stream that died are stale, the re-sync replaces them."""
        self.queue = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        self._report_queued = False

    def put(self, msg: agent_pb2.AgentMessage) -> None:
        try:
            self.queue.put_nowait(msg)
        except asyncio.QueueFull:  # the federator is not reading: start over, the re-sync carries every phase
            log.warning("%d messages queued for the federator: resetting the stream", OUTBOX_LIMIT)
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    def put_report(self) -> None:
        """Reports coalesce: at most one waits in the outbox, and it is built when it is sent."""
        if not self._report_queued:
            self._report_queued = True
            self.put(agent_pb2.AgentMessage())  # an empty body stands for "the current report"

    async def get(self) -> agent_pb2.AgentMessage | None:
        """The next message: None to end the stream, an empty body for the current report (build it now)."""
        msg = await self.queue.get()
        if msg is not None and msg.WhichOneof("body") is None:
            self._report_queued = False
        return msg


__all__ = ["OUTBOX_LIMIT", "Outbox"]
