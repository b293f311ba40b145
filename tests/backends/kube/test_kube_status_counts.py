"""A FederatedJob's status carries the job's replica counts as numbers (status.runningReplicas, readyReplicas, and
each placement's as its agent said them), in the CRD's schema, and a restart reads the placements' counts back
(outside QA F2: "2 of 4 running" was only in status.message)."""

from __future__ import annotations

from typing import Any

import yaml

from federator.backends.kube.resources import job_from_resource, job_status, spec_of
from federator.model import Job, JobId, JobPhase, Placement, PlacementId

from support import ROOT

CRD = ROOT / "deploy" / "helm" / "federator" / "crds" / "federatedjobs.yaml"


def _cr() -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "metadata": {"name": "chat", "namespace": "team", "uid": "u1", "generation": 1},
            "spec": {"kind": "inference", "replicas": 4, "queue": "serving",
                     "resources": {"nvidia.com/gpu": 1, "cpu": "1", "memory": "1Gi"}}}


def _job(cr: dict[str, Any]) -> Job:
    def part(cluster: str, running: int | None, ready: int | None) -> Placement:
        return Placement(PlacementId(f"chat-abc.g1.{cluster}"), JobId("chat-abc"), cluster, "east", 2, "H100", 1,
                         JobPhase.RUNNING, "", replicas_running=running, replicas_ready=ready)

    return Job(job_id=JobId("chat-abc"), spec=spec_of(cr), submitted_at=1_700_000_000.0, phase=JobPhase.RUNNING,
               generation=1, placed_at=1_700_000_001.0,
               placements=[part("a", None, None), part("b", 1, 0)])  # a: an older agent, which says no count


def test_the_status_counts_running_and_ready_replicas_and_reads_them_back() -> None:
    cr = _cr()
    job = _job(cr)
    status = job_status(job, generation=1, now=1_700_000_010.0)
    assert (status["runningReplicas"], status["readyReplicas"]) == (3, 2)
    assert [(p.get("runningReplicas"), p.get("readyReplicas")) for p in status["placements"]] == [(None, None), (1, 0)]
    back = job_from_resource({**cr, "status": status})
    assert back == job and back is not None and back.replicas_ready == 2


def test_the_crd_keeps_the_counts() -> None:
    """A structural schema prunes what it does not list: the counts must be in it, or a restart loses them."""
    crd = yaml.safe_load(CRD.read_text())
    (version,) = crd["spec"]["versions"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"runningReplicas", "readyReplicas"} <= set(status)
    assert {"runningReplicas", "readyReplicas"} <= set(status["placements"]["items"]["properties"])
    ready = next(c for c in version["additionalPrinterColumns"] if c["name"] == "Ready")
    assert ready["jsonPath"] == ".status.readyReplicas" and ready.get("priority") == 1  # in `kubectl get fj -o wide`
