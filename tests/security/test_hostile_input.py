"""Property and fuzz tests: arbitrary bytes and field values never crash the federator.

Every message handler (the agent stream's, Submit's, the agent's own Launch
handler) and the job file parser are fed arbitrary input. Each must either
accept it or refuse it with an error that names the field at fault, and the
federator must keep working for everyone else afterwards.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federator.api import convert
from federator.api.v1 import agent_pb2, types_pb2
from federator.jobfile import JobFileError, parse_job
from federator.jobfile_loading import parse_job_documents
from federator.model import JobPhase
from federator.security.limits import RejectReason
from federator.server.federator import Federator
from federator.server.intake import SubmitError
from federator.server.services import AgentService
from federator.store import SqliteJobStore

FIELD = re.compile(r"(^|: )(spec|metadata|apiVersion|kind|document|capacity|hello)[\w.\[\]/-]*:")
I32 = st.integers(-(2**31), 2**31 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=40)
# FEDERATOR_FUZZ_EXAMPLES=5000 make test PYTEST_ARGS=tests/security fuzzes deeper than the default run.
SETTINGS = settings(max_examples=int(os.environ.get("FEDERATOR_FUZZ_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def federator() -> Federator:
    return Federator(store=SqliteJobStore(Path(":memory:")))


def still_serves(fed: Federator) -> None:
    """After hostile input the federator still schedules, samples metrics and takes a good job."""
    fed.schedule_once()
    fed.sample()
    good = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": "good"},
                      "spec": {"kind": "training", "resources": {"cpu": "1"}}})
    try:
        fed.submit(good)
    except SubmitError as exc:  # only because an earlier example already took the name
        assert "already exists" in str(exc)
    fed.schedule_once()


pools = st.builds(agent_pb2.AcceleratorPool, accelerator_model=TEXT, nodes_by_free=st.lists(I32, max_size=12),
                  total_accelerators=I32, allocatable_accelerators=I32, free_accelerators=I32)
capacities = st.builds(
    agent_pb2.CapacityReport, sequence=st.integers(0, 2**64 - 1), accelerator_pools=st.lists(pools, max_size=4),
    cpu_milli_allocatable=I64, cpu_milli_free=I64, memory_bytes_allocatable=I64, memory_bytes_free=I64,
    node_cpu_milli_free_max=I64, node_memory_bytes_free_max=I64, placement_ids=st.lists(TEXT, max_size=5))
agent_messages = st.one_of(
    st.builds(lambda c: agent_pb2.AgentMessage(capacity=c), capacities),
    st.builds(lambda p, ph, m: agent_pb2.AgentMessage(job_update=agent_pb2.JobUpdate(placement_id=p, phase=ph,
                                                                                     message=m)),
              TEXT, st.integers(-3, 10), st.text(max_size=200)),
    st.builds(lambda p, ok, m: agent_pb2.AgentMessage(ack=agent_pb2.Ack(placement_id=p, ok=ok, message=m)),
              TEXT, st.booleans(), TEXT),
    st.builds(lambda c, r: agent_pb2.AgentMessage(hello=agent_pb2.Hello(cluster=c, region=r)), TEXT, TEXT),
    st.just(agent_pb2.AgentMessage()),
)


@SETTINGS
@given(st.lists(agent_messages, min_size=1, max_size=8))
def test_arbitrary_agent_messages_are_applied_or_refused_and_never_crash(msgs: list[agent_pb2.AgentMessage]) -> None:
    fed = federator()
    service = AgentService(fed)
    rec = fed.connect(cluster="fuzz-1", region="r", labels={})
    for msg in msgs:
        reason = service.handle(rec, msg)
        assert reason is None or isinstance(reason, RejectReason)
    still_serves(fed)


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes_on_the_agent_stream_never_crash(data: bytes) -> None:
    try:
        msg = agent_pb2.AgentMessage.FromString(data)
    except DecodeError:
        return  # refused by the transport before any handler runs (see test_grpc_edge.py)
    fed = federator()
    rec = fed.connect(cluster="fuzz-1", region="r", labels={})
    AgentService(fed).handle(rec, msg)
    still_serves(fed)


specs = st.builds(
    types_pb2.JobSpec,
    name=TEXT,
    namespace=TEXT,
    kind=st.integers(-2, 4),
    replicas=I32,
    resources=st.builds(types_pb2.Resources, cpu_milli=I64, memory_bytes=I64, accelerator_milli=I64),
    accelerator_models=st.lists(TEXT, max_size=3),
    queue=TEXT,
    priority=I32,
    preferred_regions=st.lists(TEXT, max_size=3),
    labels=st.dictionaries(TEXT, TEXT, max_size=3),
    annotations=st.dictionaries(
        st.sampled_from(["federator.io/failover", "federator.io/sim-duration", "x"]) | TEXT, TEXT, max_size=3
    ),
    pod_template_json=st.one_of(st.just(""), st.just('{"spec": {}}'), TEXT),
)


@SETTINGS
@given(specs)
def test_any_submitted_spec_is_accepted_or_refused_naming_the_field(pb: types_pb2.JobSpec) -> None:
    fed = federator()
    try:
        job = fed.submit(convert.spec_from_pb(pb))
    except (SubmitError, convert.WireError) as exc:
        assert FIELD.search(str(exc)), str(exc)
    else:
        assert job.phase is JobPhase.PENDING and fed.jobs[job.job_id] is job
    still_serves(fed)


@SETTINGS
@given(st.text(max_size=400))
def test_any_job_file_text_parses_or_names_each_problem(text: str) -> None:
    try:
        parse_job_documents(text, source="fuzz.yaml")
    except JobFileError as exc:
        assert exc.problems and all(p.field and p.problem for p in exc.problems)
        assert str(exc).startswith("fuzz.yaml: ")


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)
job_shaped = st.fixed_dictionaries(
    {"apiVersion": st.just("federator.io/v1alpha1") | yaml_values, "kind": st.just("FederatedJob") | yaml_values},
    optional={"metadata": st.fixed_dictionaries({}, optional={"name": st.just("ok") | yaml_values,
                                                              "namespace": yaml_values, "labels": yaml_values,
                                                              "annotations": yaml_values}),
              "spec": st.fixed_dictionaries({}, optional={
                  "kind": st.sampled_from(["training", "inference"]) | yaml_values,
                  "replicas": yaml_values, "queue": yaml_values, "priority": yaml_values,
                  "acceleratorModels": yaml_values, "gpuModels": yaml_values, "regions": yaml_values,
                  "template": yaml_values,
                  "resources": st.dictionaries(st.sampled_from(["cpu", "memory", "nvidia.com/gpu", "x"]),
                                               yaml_values, max_size=3) | yaml_values}) | yaml_values})


@SETTINGS
@given(job_shaped)
def test_any_job_document_parses_or_names_each_problem(doc: object) -> None:
    try:
        parse_job(doc)
    except JobFileError as exc:
        assert exc.problems and all(p.field and p.problem for p in exc.problems)


launches = st.builds(
    agent_pb2.Launch,
    placement=st.builds(types_pb2.Placement, placement_id=TEXT, job_id=TEXT, cluster=TEXT, region=TEXT,
                        replicas=I32, accelerator_model=TEXT, phase=st.integers(-2, 8), generation=I64),
    spec=specs)


@SETTINGS
@given(launches)
def test_the_agent_refuses_or_runs_any_launch_order_without_crashing(launch: agent_pb2.Launch) -> None:
    import asyncio

    from federator.agent.agent import Agent, AgentConfig
    from federator.backends.sim.fleet import parse_fleet
    from federator.backends.sim.runtime import SimBackend

    fleet = parse_fleet({"clusters": [{"name": "c", "region": "r", "nodes": [
        {"count": 2, "gpuModel": "H100", "gpus": 8, "cpu": 64, "memory": "256Gi"}]}]})

    async def run() -> list[agent_pb2.AgentMessage]:
        backend = SimBackend(fleet["c"], time_scale=0.001)
        agent = Agent(AgentConfig(cluster="c", region="r", target="127.0.0.1:1"), backend)
        await backend.start(lambda *_, **__: None)
        await agent._launch(launch)  # noqa: SLF001 - the handler under test
        await agent._launch(launch)  # noqa: SLF001 - and again: idempotent
        await backend.stop()
        out = []
        while not agent._outbox.empty():  # noqa: SLF001
            out.append(agent._outbox.get_nowait())  # noqa: SLF001
        return [m for m in out if m is not None]

    acks = [m.ack for m in asyncio.run(run()) if m.WhichOneof("body") == "ack"]
    assert len(acks) == 2 and acks[0].ok == acks[1].ok
    assert all(a.ok or a.message for a in acks)  # a refusal says why
