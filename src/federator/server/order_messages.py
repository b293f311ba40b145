"""The federator's orders (server/orders.py) as the agent's stream carries them (proto/federator/v1/agent.proto).

Why its own module: the conversion is where the contract's obligations on each order are met as it leaves (a
Launch's spec without what is the federator's alone, its job digest said back at re-syncs, its date and its seal;
a job-ending Cancel's seal), apart from the stream's bookkeeping in server/agent_service.py, which had grown past
600 lines.
"""

from __future__ import annotations

from federator.api import convert
from federator.api.v1 import agent_pb2
from federator.server import seals
from federator.server.launch_spec import launched_spec
from federator.server.orders import ErrorNotice, LaunchOrder, ListWanted, LogsOrder, Order, ResizeOrder
from federator.server.reapplied import job_digest
from federator.server.terms import StreamTerms


def order_to_pb(order: Order, terms: StreamTerms, cluster: str, *, silent: float = 0.0) -> agent_pb2.FederatorMessage:
    """`order` as the message the agent's stream carries; a Launch dated as it leaves (`silent`: how long its
    agent has been silent past its lease, so one queued to a silent agent is dated when the lease ran out) and
    sealed for `cluster`, a job-ending Cancel sealed too (server/seals.py)."""
    if isinstance(order, LaunchOrder):
        # Without its owner nor its dependency: the federator's alone (server/launch_spec.py)
        p = order.placement
        launch = agent_pb2.Launch(placement=convert.placement_to_pb(p),
                                  spec=convert.spec_to_pb(launched_spec(order.spec)),
                                  job_digest=job_digest(order.spec),  # said back at re-syncs (reapplied.py)
                                  seal=seals.current().launch(p.placement_id, p.job_id, p.generation, cluster))
        terms.stamp(launch, silent=silent)  # dated as it leaves: the agent refuses it once older than its bound
        return agent_pb2.FederatorMessage(launch=launch)
    if isinstance(order, ResizeOrder):
        return agent_pb2.FederatorMessage(resize=agent_pb2.Resize(
            placement_id=order.placement_id, generation=order.generation, replicas=order.replicas,
            reason=order.reason))
    if isinstance(order, LogsOrder):
        return agent_pb2.FederatorMessage(logs=agent_pb2.LogsRequest(
            request_id=order.request_id, placement_id=order.placement_id, replica=order.replica,
            container=order.container, tail_lines=order.tail_lines, limit_bytes=order.limit_bytes,
            timestamps=order.timestamps, since_time=order.since_time))
    if isinstance(order, ListWanted):
        return agent_pb2.FederatorMessage(placement_list_wanted=agent_pb2.PlacementListWanted(reason=order.reason))
    if isinstance(order, ErrorNotice):
        return agent_pb2.FederatorMessage(error=agent_pb2.Error(reason=order.reason, message=order.message,
                                                                placement_id=order.placement_id))
    seal = seals.current().cancel(order.placement_id, cluster) if order.job_ended else ""  # server/seals.py
    return agent_pb2.FederatorMessage(cancel=agent_pb2.Cancel(placement_id=order.placement_id, reason=order.reason,
                                                              job_ended=order.job_ended, seal=seal))
