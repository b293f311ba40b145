"""How much of a loaded federator's delay in answering a Hello an agent counts as the Welcome's travel.

The agent bounds the Welcome's travel by the stream's round trip less the federator's time between
Welcome.hello_received_at and federator_time (agent/fencing.py, `Contact.travel_bound`), and dates its orders
that much older at most. What the federator's loop made the stream wait before its handler read the clock
cannot be told from travel, and is counted. This loads the real AgentService's loop with TASKS tasks that each
hold it TURN seconds a turn, opens one stream over loopback gRPC from a thread, and prints where the time went:

    PYTHONPATH=src python bench/welcome_travel.py --tasks 50 --turn 0.01

(numbers in docs/reliability.md, "Pauses").
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from federator.api.v1 import agent_pb2, agent_pb2_grpc
from federator.security.auth import Authenticator
from federator.server.federator import Federator
from federator.server.services import AgentService
from federator.store import SqliteJobStore


async def measure(tasks: int, turn: float, db: Path) -> str:
    fed = Federator(store=SqliteJobStore(db), lease_seconds=10.0, cycle_interval=0.05)
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(fed, Authenticator(insecure=True)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    async def hog() -> None:
        while True:
            time.sleep(turn)  # a turn of the loop's work (a report, a submit) that holds it
            await asyncio.sleep(0)

    hogs = [asyncio.get_running_loop().create_task(hog()) for _ in range(tasks)]
    got: dict[str, object] = {}

    def agent() -> None:  # its own thread and channel: only the federator's loop is loaded
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            grpc.channel_ready_future(ch).result(timeout=60)
            done = threading.Event()

            def hello() -> Iterator[agent_pb2.AgentMessage]:
                got["opened"] = time.time()  # same host: one wall clock for both ends
                yield agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster="east-1", region="east"))
                done.wait(60)

            call = agent_pb2_grpc.AgentServiceStub(ch).Connect(hello())
            got["welcome"] = next(call).welcome
            got["arrived"] = time.time()
            done.set()
            call.cancel()

    thread = threading.Thread(target=agent)
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.01)
    for task in hogs:
        task.cancel()
    await server.stop(0)
    fed.cycles.close()
    welcome = got["welcome"]
    assert isinstance(welcome, agent_pb2.Welcome)
    opened, arrived = float(got["opened"]), float(got["arrived"])  # type: ignore[arg-type]
    held = welcome.federator_time - welcome.hello_received_at
    return (f"tasks={tasks} turn={turn:g}s (a loop cycle about {tasks * turn:.2f}s): the Welcome came "
            f"{arrived - opened:.2f}s after the stream opened; {welcome.hello_received_at - opened:.2f}s before the "
            f"handler took it up (counted as travel), {held:.2f}s in the handler (not counted); travel bound "
            f"{(arrived - opened) - held:.2f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--turn", type=float, default=0.01)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(asyncio.run(measure(args.tasks, args.turn, Path(tmp) / "federator.db")))


if __name__ == "__main__":
    main()
