"""A federator without an agent's catalog (outside QA, vendors V6): the agent reports a vendor's model that the
federator's catalog does not know, and a job pins it in the one-count form (`nvidia.com/gpu: 8` +
`acceleratorModels: [MetaX-C500]`). A federator whose catalog knows the model refuses that job; this one took it
with no word and it waited for ever. Now Submit warns naming the model and its vendor, and the federator logs the
member's vendor its catalog lacks. Over real gRPC: an agent stream, then a Submit.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from test_agent_input import pool
from test_pool_vendor import capacity
from test_services_edge import agent_stream, channel, hello, served

from federator.api import convert
from federator.api.v1 import jobs_pb2, jobs_pb2_grpc
from federator.jobfile import parse_job

METAX = pool(accelerator_model="MetaX-C500", vendor="metax", resource_name="metax-tech.com/gpu")


def request(name: str, models: list[str]) -> jobs_pb2.SubmitRequest:
    return jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(parse_job({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": {"name": name},
        "spec": {"kind": "training", "resources": {"cpu": "1", "nvidia.com/gpu": 8}, "acceleratorModels": models}})))


def test_a_one_count_job_pinning_another_vendors_model_only_the_fleet_knows_is_warned_of(
        caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with served() as s:
            async with channel(s.target) as ch:
                with caplog.at_level(logging.WARNING, logger="federator.server"):
                    got, err = await agent_stream(ch, [hello("mx-1"), capacity(1, METAX, pool())])
                assert err is None and not [m for m in got if m.WhichOneof("body") == "error"]
                stub = jobs_pb2_grpc.JobServiceStub(ch)
                pinned = await stub.Submit(request("metax-onecount", ["MetaX-C500"]))
                nvidia = await stub.Submit(request("h100-onecount", ["H100"]))
            (warning,) = [w for w in pinned.warnings if w.startswith("spec.acceleratorModels[0]")]
            assert warning.startswith("spec.acceleratorModels[0]: MetaX-C500 is metax hardware as the member "
                                      "clusters report it (this federator's accelerator catalog does not know it), "
                                      "but the one-count form asks for nvidia devices"), warning
            assert "list alternatives in spec.accelerators ({model: MetaX-C500, count: N})" in warning
            assert not [w for w in nvidia.warnings if "acceleratorModels" in w]
        logged = [r.getMessage() for r in caplog.records if "lacks" in r.getMessage()]
        assert logged == ["cluster mx-1 reports pools of vendor(s) metax, which this federator's accelerator "
                          "catalog lacks: jobs may name their models, but their resource names and models are not "
                          "checked here; give serve the agent's --accelerator-catalog file"]

    asyncio.run(go())
