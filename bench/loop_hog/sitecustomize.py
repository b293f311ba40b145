"""A bench hook: `federator serve`'s event loop loaded on purpose, every turn held LOOP_HOG_MS milliseconds.

Why: the soak's findings S3, S4 and S7 come from a saturated loop (a 30,000-job backlog, a hundred agents, a machine
at load 15-30), which a small machine's short soak does not reach. With this directory on PYTHONPATH and
LOOP_HOG_MS set, `python -m federator serve` runs beside its own work a task that sleeps LOOP_HOG_MS (the GIL
released: the cycle's thread and the store's writer run) and yields, so no turn of its loop is shorter than that.
Every other process (agents, clients) is left alone. bench/soak.py --loop-hog-ms sets it.
"""

import asyncio
import os
import sys
import time

_HOG = float(os.environ.get("LOOP_HOG_MS", "0") or 0) / 1000

if _HOG > 0 and "serve" in sys.argv[1:3]:
    _run = asyncio.run

    def _hogged_run(main, **kwargs):  # type: ignore[no-untyped-def]
        async def hogged():  # type: ignore[no-untyped-def]
            async def hog() -> None:
                while True:
                    time.sleep(_HOG)
                    await asyncio.sleep(0)

            task = asyncio.get_running_loop().create_task(hog())
            try:
                return await main
            finally:
                task.cancel()

        return _run(hogged(), **kwargs)

    asyncio.run = _hogged_run

# GRPC_PENDING_CAP="SOFT,HARD": `federator serve`'s gRPC server built with gRPC core's cap on calls waiting to be
# picked up (grpc.server.max_pending_requests and its hard limit), to measure that cap (bench/admission.py).
_CAP = os.environ.get("GRPC_PENDING_CAP", "").split(",")

if len(_CAP) == 2 and "serve" in sys.argv[1:3]:
    import grpc.aio

    _server = grpc.aio.server

    def _capped_server(*args, options=(), **kwargs):  # type: ignore[no-untyped-def]
        capped = [*options, ("grpc.server.max_pending_requests", int(_CAP[0])),
                  ("grpc.server.max_pending_requests_hard_limit", int(_CAP[1]))]
        return _server(*args, options=capped, **kwargs)

    grpc.aio.server = _capped_server
