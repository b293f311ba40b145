"""A loopback TCP proxy that can cut and heal the link between an agent and the federator.

`cut()` closes every open connection and refuses new ones (accepts and closes
them at once), as a network partition or a firewall change would; `heal()`
lets traffic through again. `silence()` keeps every connection open but
forwards nothing either way (a link that drops packets without a reset).
`swallow_replies()` (plaintext HTTP/2 only) forwards requests but, once a
client has sent a whole request (a DATA frame ending its stream), nothing more
back: the server does the work and its reply never arrives. It runs its own asyncio loop in a thread so a
test can drive it synchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator


class Proxy:
    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.address = ""
        self.connections = 0
        self._cut = False
        self._silent = False
        self._swallow = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="proxy")

    def start(self) -> Proxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        fut.result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        muted = asyncio.Event()  # this connection's replies are swallowed from now on
        await asyncio.gather(self._pipe(reader, up_writer, watch=_RequestEnd(muted) if self._swallow else None),
                             self._pipe(up_reader, writer, muted=muted))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                    watch: _RequestEnd | None = None, muted: asyncio.Event | None = None) -> None:
        try:
            while data := await reader.read(65536):
                if self._cut:
                    break
                if self._silent or (muted is not None and muted.is_set()):
                    continue  # read and dropped: the connection stays up, nothing gets through
                writer.write(data)
                await writer.drain()
                if watch is not None:
                    watch.feed(data)
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def cut(self) -> None:
        def do() -> None:
            self._cut = True
            for w in list(self._writers):
                w.transport.abort()  # a reset, not a polite close
            self._writers.clear()

        self._loop.call_soon_threadsafe(do)

    def heal(self) -> None:
        def do() -> None:
            self._cut = self._silent = False

        self._loop.call_soon_threadsafe(do)

    def silence(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_silent", True)

    def swallow_replies(self) -> None:
        """Connections made from now on lose every reply once their first request has been sent."""
        self._loop.call_soon_threadsafe(setattr, self, "_swallow", True)

    def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)

        async def drain() -> None:  # every connection's task ends here, none is left pending at exit
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(drain(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@contextlib.contextmanager
def proxy_to(target: str) -> Iterator[Proxy]:
    p = Proxy(target).start()
    try:
        yield p
    finally:
        p.stop()


class _RequestEnd:
    """Reads a plaintext HTTP/2 client stream; sets `done` at the first DATA frame that ends a stream."""

    PREFACE = 24  # b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    def __init__(self, done: asyncio.Event) -> None:
        self.done = done
        self._buf = b""
        self._skip = self.PREFACE

    def feed(self, data: bytes) -> None:
        self._buf += data
        while True:
            if self._skip:
                n = min(self._skip, len(self._buf))
                self._buf, self._skip = self._buf[n:], self._skip - n
                if self._skip:
                    return
            if len(self._buf) < 9:
                return
            length = int.from_bytes(self._buf[:3], "big")
            kind, flags = self._buf[3], self._buf[4]
            if kind == 0 and flags & 0x1:  # DATA with END_STREAM: the request is complete
                self.done.set()
            self._buf, self._skip = self._buf[9:], length
