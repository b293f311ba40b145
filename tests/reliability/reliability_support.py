"""Helpers of the fault tests: a fleet of twin clusters, job builders, and what the agents ran."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from federator.api.v1 import jobs_pb2_grpc
from federator.cli.get import list_clusters, list_jobs
from federator.jobfile import parse_job
from federator.local import LocalFederation
from federator.model import Job, JobSpec
from federator.security.tls import ClientOptions
from federator.server.services import JobService

# Two identical clusters in two regions: a job that fits one fits the other.
TWIN_FLEET = {"clusters": [
    {"name": name, "region": region, "nodes": [
        {"count": 2, "gpuModel": "NVIDIA-H100-80GB-HBM3", "gpus": 8, "cpu": 96, "memory": "1Ti"}]}
    for name, region in (("a-1", "a"), ("b-1", "b"))
]}
FAST = ["--report-interval", "0.3", "--cycle-interval", "0.2"]


def job(name: str, *, gpus: int = 8, duration: str = "1s", **annotations: str) -> JobSpec:
    return parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                      "metadata": {"name": name, "annotations": {"federator.io/sim-duration": duration,
                                                                 "federator.io/sim-startup": "0.1s", **annotations}},
                      "spec": {"kind": "training", "replicas": 1,
                               "resources": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": gpus}}})


def jobs_by_name(fed: LocalFederation) -> dict[str, Job]:
    return {j.spec.name: j for j in list_jobs(fed.client)}


def cluster_state(fed: LocalFederation, name: str) -> str:
    return next(c["state"] for c in list_clusters(fed.client) if c["name"] == name)


def launches(fed: LocalFederation) -> dict[str, list[str]]:
    """Placement ids each agent process launched, from the agents' logs (the ground truth of what ran)."""
    out: dict[str, list[str]] = {}
    for log in fed.workdir.glob("agent-*.log"):
        out[log.stem.removeprefix("agent-")] = re.findall(r"launched placement (\S+)", log.read_text())
    return out


def job_of(placement_id: str) -> str:
    return placement_id.split(".g", 1)[0]


def metric(fed: LocalFederation, name: str, **labels: str) -> float | None:
    """One sample from the federator's /metrics, or None if it is not there."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    body = urllib.request.urlopen(fed.metrics_url, timeout=10).read().decode()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@asynccontextmanager
async def serving(service: JobService) -> AsyncIterator[ClientOptions]:
    """`service` alone on a real loopback socket, and the client options that reach it: a JobService that answers
    as a test makes it (lossy, busy) for the CLI's side of the contract."""
    server = grpc.aio.server()
    jobs_pb2_grpc.add_JobServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield ClientOptions(server=f"127.0.0.1:{port}", insecure=True)
    finally:
        await server.stop(0)
