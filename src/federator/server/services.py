"""gRPC transports of the federator: AgentService, JobService, ClusterService.

The only server module that touches generated stubs: it translates wire
messages to domain calls on `Federator` and domain errors to gRPC status codes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from federator import __version__
from federator.api import convert
from federator.api.v1 import agent_pb2, agent_pb2_grpc, jobs_pb2, jobs_pb2_grpc, types_pb2
from federator.server.federator import ClusterRecord, Federator, NotFound, SubmitError
from federator.server.orders import CancelOrder, LaunchOrder, Order

log = logging.getLogger("federator.server")
HELLO_TIMEOUT_SECONDS = 10.0


def _order_to_pb(order: Order) -> agent_pb2.FederatorMessage:
    if isinstance(order, LaunchOrder):
        return agent_pb2.FederatorMessage(
            launch=agent_pb2.Launch(placement=convert.placement_to_pb(order.placement),
                                    spec=convert.spec_to_pb(order.spec)))
    return agent_pb2.FederatorMessage(cancel=agent_pb2.Cancel(placement_id=order.placement_id, reason=order.reason))


class AgentService(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, federator: Federator) -> None:
        self.fed = federator

    async def Connect(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[agent_pb2.AgentMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[agent_pb2.FederatorMessage]:
        try:
            first = await asyncio.wait_for(anext(request_iterator), HELLO_TIMEOUT_SECONDS)
        except (TimeoutError, StopAsyncIteration):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello: the first message must be a Hello")
            return
        if first.WhichOneof("body") != "hello" or not first.hello.cluster or not first.hello.region:
            self.fed.metrics.messages_rejected.labels("bad_hello").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "hello: the first message must be a Hello with cluster and region set")
            return
        hello = first.hello
        rec = self.fed.connect(cluster=hello.cluster, region=hello.region, labels=dict(hello.labels))
        reader = asyncio.get_running_loop().create_task(self._read(rec, request_iterator))
        try:
            yield agent_pb2.FederatorMessage(welcome=agent_pb2.Welcome(
                report_interval_seconds=self.fed.report_interval, lease_seconds=self.fed.lease_seconds,
                federator_version=__version__))
            while True:
                order = await rec.outbox.get()
                if order is None:
                    break
                yield _order_to_pb(order)
        finally:
            reader.cancel()
            self.fed.disconnect(rec)

    async def _read(self, rec: ClusterRecord, requests: AsyncIterator[agent_pb2.AgentMessage]) -> None:
        try:
            async for msg in requests:
                self._handle(rec, msg)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("agent stream of %s failed", rec.name)
        finally:
            rec.outbox.put_nowait(None)

    def _handle(self, rec: ClusterRecord, msg: agent_pb2.AgentMessage) -> None:
        kind = msg.WhichOneof("body")
        try:
            if kind == "capacity":
                self.fed.report(rec, convert.capacity_from_pb(msg.capacity))
            elif kind == "job_update":
                u = msg.job_update
                self.fed.job_update(rec, u.placement_id, convert.phase_from_pb(u.phase), u.message)
            elif kind == "ack":
                if msg.ack.ok:
                    self.fed.acked(rec, msg.ack.placement_id)
                else:
                    self.fed.refused(rec, msg.ack.placement_id, msg.ack.message)
            else:
                self.fed.metrics.messages_rejected.labels("unexpected").inc()
                log.warning("cluster %s sent an unexpected %s message", rec.name, kind)
        except convert.WireError as exc:
            self.fed.metrics.messages_rejected.labels("malformed").inc()
            log.warning("cluster %s sent a malformed %s: %s", rec.name, kind, exc)


class JobService(jobs_pb2_grpc.JobServiceServicer):
    def __init__(self, federator: Federator) -> None:
        self.fed = federator

    async def Submit(self, request: jobs_pb2.SubmitRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> jobs_pb2.SubmitResponse:
        try:
            job = self.fed.submit(convert.spec_from_pb(request.spec))
        except (SubmitError, convert.WireError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return jobs_pb2.SubmitResponse(job=convert.job_to_pb(job))

    async def Get(self, request: jobs_pb2.GetJobRequest,  # noqa: N802
                  context: grpc.aio.ServicerContext) -> types_pb2.Job:
        try:
            return convert.job_to_pb(self.fed.get(request.job_id))
        except NotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0]))
            raise

    async def List(self, request: jobs_pb2.ListJobsRequest,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> jobs_pb2.ListJobsResponse:
        return jobs_pb2.ListJobsResponse(jobs=[convert.job_to_pb(j) for j in self.fed.list(request.queue)])

    async def Cancel(self, request: jobs_pb2.CancelJobRequest,  # noqa: N802
                     context: grpc.aio.ServicerContext) -> types_pb2.Job:
        try:
            return convert.job_to_pb(self.fed.cancel(request.job_id))
        except NotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0]))
            raise

    async def Watch(self, request: jobs_pb2.WatchJobsRequest,  # noqa: N802
                    context: grpc.aio.ServicerContext) -> AsyncIterator[types_pb2.Job]:
        queue = self.fed.watch()
        try:
            wanted = self.fed.get(request.job_id).job_id if request.job_id else None
        except NotFound as exc:
            self.fed.unwatch(queue)
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc.args[0]))
            return
        try:
            for job in self.fed.list():
                if wanted is None or job.job_id == wanted:
                    yield convert.job_to_pb(job)
            while True:
                job_id = await queue.get()
                if wanted is None or job_id == wanted:
                    yield convert.job_to_pb(self.fed.jobs[job_id])
        finally:
            self.fed.unwatch(queue)


class ClusterService(jobs_pb2_grpc.ClusterServiceServicer):
    def __init__(self, federator: Federator) -> None:
        self.fed = federator

    async def List(self, request: jobs_pb2.ListClustersRequest,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> jobs_pb2.ListClustersResponse:
        snap = {c.name: c.capacity for c in self.fed.snapshot().clusters}
        placements: dict[str, int] = {}
        for job in self.fed.jobs.values():
            for p in job.placements:
                if p.phase.is_active:
                    placements[p.cluster] = placements.get(p.cluster, 0) + 1
        out = []
        for rec in sorted(self.fed.clusters.values(), key=lambda r: r.name):
            status = jobs_pb2.ClusterStatus(name=rec.name, region=rec.region, state=rec.state.value,
                                            labels=rec.labels, last_report_at=rec.last_report_at,
                                            placements=placements.get(rec.name, 0))
            cap = snap.get(rec.name) or rec.capacity
            if cap is not None:
                status.capacity.CopyFrom(convert.capacity_to_pb(cap))
            out.append(status)
        return jobs_pb2.ListClustersResponse(clusters=out)
