"""The federator's one gRPC server: its interceptors, its options, and how its calls are taken up.

Why a module of its own: how grpc.aio takes a call up decides who is served when the event loop is saturated (soak
finding S3, docs/benchmarks.md), and that is a property of the server's set-up, not of any servicer.

How a call is taken up (grpcio 1.85, grpc.aio): every method the generated `add_*Servicer_to_server` functions
register is a registered method of gRPC core, with a queue of its own of calls not yet taken up, and the server's
one task asks core for the next call of each method, one at a time, a few loop turns per call. So a flood of
Submits waits in Submit's queue only: an agent's Connect, a Watch and the kubelet's health check are each taken up
in a few turns whatever the flood (bench/admission.py: 0.3-0.4 s with 300 Submits waiting on a loop whose turns
last 40 ms). What a flood's own calls cannot escape: on such a loop Submit's queue drains at a call every 5 turns
or so, and gRPC core ends a call left in it 30 s CANCELLED (`grpc.server_max_unrequested_time_in_server`) before
any code of ours, the Shedder included (server/shedding.py), has seen it.

What was measured and not taken (docs/benchmarks.md, S3), because none of it answers such a call sooner with
RESOURCE_EXHAUSTED:
- gRPC core's cap on calls waiting to be taken up (`grpc.server.max_pending_requests`, `..._hard_limit`; defaults
  1000 and 3000, kept): past it core ends a call at once, but CANCELLED, counted nowhere, and it counts calls, not
  time: a healthy federator's burst of 300 Submits (all answered in 0.45 s without the cap) lost 166 of them to a
  cap of 32/64.
- `grpc.aio.server(maximum_concurrent_rpcs=...)`: checked on the loop after the call is taken up (no sooner than
  the Shedder), and it counts every call in flight, agents' streams and Watches included, which would let the
  job API's calls refuse a cluster's Connect.
- A second server or port for the job API: every user and chart would change, for the same loop.
What would reach these calls is a front end that takes calls up off the federator's loop (another thread or
process owning the listener; bench/admission_front.py is a prototype: on the same loop, 233 of 300 refused
RESOURCE_EXHAUSTED within 1.2 s, none CANCELLED); until then jobs.proto tells a client that an unexplained
CANCELLED means nothing was done.
"""

from __future__ import annotations

import grpc

from federator.keepalive import SERVER_PING_POLICY
from federator.metrics import Metrics
from federator.server.interceptors import MetricsInterceptor
from federator.server.shedding import Shedder


def build_server(metrics: Metrics, *inner: grpc.aio.ServerInterceptor, max_message_bytes: int) -> grpc.aio.Server:
    """The server, its calls counted (MetricsInterceptor) around the Shedder around `inner`; not started.

    Every service is added with its generated `add_*Servicer_to_server`, which registers each method with gRPC
    core: that is what gives each method its own queue of calls not yet taken up (see the module).
    """
    return grpc.aio.server(interceptors=[MetricsInterceptor(metrics), Shedder(metrics), *inner],
                           options=[("grpc.max_receive_message_length", max_message_bytes),
                                    ("grpc.max_send_message_length", max_message_bytes),
                                    *SERVER_PING_POLICY,  # accepts the agents' keepalive pings
                                    # grpcio binds with SO_REUSEPORT by default: a second federator started on
                                    # this port would bind too, and the kernel would deal clients and agents
                                    # between the two
                                    ("grpc.so_reuseport", 0)])


__all__ = ["build_server"]
