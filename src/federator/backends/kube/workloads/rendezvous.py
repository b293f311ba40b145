"""Rendezvous for training: stable pod DNS names and the environment launchers read.

An Indexed batch/v1 Job gives each pod the hostname "<job>-<index>". With a
headless Service of the same name and `subdomain` on the pods, replica i is
reachable as "<job>-<i>.<job>" from any pod of the namespace, so replica 0's
name is known before any pod exists. Every container then gets what
`torchrun` and its peers read:

    MASTER_ADDR   "<job>-0.<job>" (replica 0)
    MASTER_PORT   29500, or the job's annotation federator.io/master-port
    WORLD_SIZE    the replicas (pods) of the placement; NNODES the same
    NODE_RANK     the pod's completion index (downward API); RANK the same, for
                  a job that starts one process per pod without a launcher
                  (torch.distributed's env:// reads RANK and WORLD_SIZE, as
                  PyTorchJob sets them; torchrun sets its own per process)

Every container also gets torchrun's own variables, as Kubeflow's PyTorchJob sets them (torchrun reads each
flag it is not given from `PET_<FLAG>`), so a bare `torchrun train.py` is right on every shape the job may get:

    PET_NPROC_PER_NODE  the whole accelerators of one replica under the alternative placed (at least 1):
                        8 on an 8 x H100 alternative, 16 on a 16 x Ascend910B one, where a command that said
                        --nproc_per_node=8 was wrong on one of them (outside pretraining QA, P2)
    PET_NNODES, PET_NODE_RANK, PET_MASTER_ADDR, PET_MASTER_PORT  the same values as above

A flag on the command line still wins over its variable.

The Service carries an ownerReference to the Job, so the member's garbage
collector deletes it with the Job; the agent deletes it too when it cancels.

An Indexed Job of one pod (a one-node debug run of the same torchrun command)
gets the same variables, with MASTER_ADDR "127.0.0.1", NNODES = WORLD_SIZE = 1
and NODE_RANK = RANK = 0, and neither Service nor subdomain: the pod is its own
master, loopback reaches it without DNS (the pod's FQDN "<job>-0.<job>" would
resolve only through a Service, and its bare hostname only through the
kubelet's /etc/hosts), and 127.0.0.1 is what torchrun itself assumes when no
--master_addr is given. Without them, Kubernetes leaves `$(NNODES)` in the
command as literal text and torchrun exits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.backends.kube.workloads.common import Obj, WorkloadError, set_env, workload_labels
from federator.model import MILLI, JobSpec, Placement, placement_resources
from federator.podtemplates import MASTER_PORT_ANNOTATION, RENDEZVOUS_ENV

COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
SINGLE_POD_MASTER = "127.0.0.1"


def master_port(annotations: Mapping[str, str], default: int) -> int:
    """The rendezvous port a job asks for with the annotation federator.io/master-port."""
    raw = annotations.get(MASTER_PORT_ANNOTATION)
    if raw is None:
        return default
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise WorkloadError(f"metadata.annotations[{MASTER_PORT_ANNOTATION}]",
                            f"must be a port number from 1 to 65535, got {raw!r}")
    return port


def is_indexed(job: Mapping[str, Any]) -> bool:
    """An Indexed Job, of any size: the shape whose containers get the rendezvous env."""
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def needs_rendezvous(job: Mapping[str, Any]) -> bool:
    """An Indexed Job of more than one pod: the shape whose pods must find each other (the headless Service)."""
    return is_indexed(job) and int((job.get("spec") or {}).get("parallelism") or 1) > 1


TORCHRUN_MIRRORS = ("MASTER_ADDR", "MASTER_PORT", "NNODES", "NODE_RANK")
"""The rendezvous variables torchrun also reads as PET_<name> (its flags --master-addr, ... --node-rank)."""


def procs_per_replica(placement: Placement, spec: JobSpec) -> int:
    """Processes a replica starts (PET_NPROC_PER_NODE): its whole accelerators under the alternative placed, at
    least 1 (a CPU-only or fractional replica runs one)."""
    return max(1, placement_resources(placement, spec).accelerator_milli // MILLI)


def rendezvous_env(name: str, *, replicas: int, port: int, procs: int = 1) -> list[Obj]:
    env = _rendezvous_env(name, replicas=replicas, port=port)
    mirrors = [{**e, "name": f"PET_{e['name']}"} for e in env if e["name"] in TORCHRUN_MIRRORS]
    return [*env, *mirrors, {"name": "PET_NPROC_PER_NODE", "value": str(max(1, procs))}]


def _rendezvous_env(name: str, *, replicas: int, port: int) -> list[Obj]:
    if replicas <= 1:  # its own master: no DNS name, no Service
        return [{"name": "MASTER_ADDR", "value": SINGLE_POD_MASTER}, {"name": "MASTER_PORT", "value": str(port)},
                {"name": "WORLD_SIZE", "value": "1"}, {"name": "NNODES", "value": "1"},
                {"name": "NODE_RANK", "value": "0"}, {"name": "RANK", "value": "0"}]
    return [
        {"name": "MASTER_ADDR", "value": f"{name}-0.{name}"},
        {"name": "MASTER_PORT", "value": str(port)},
        {"name": "WORLD_SIZE", "value": str(replicas)},
        {"name": "NNODES", "value": str(replicas)},
        {"name": "NODE_RANK", "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}},
        {"name": "RANK", "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}},
    ]


def apply_rendezvous(job: Obj, *, port: int, procs: int = 1) -> None:
    """Rendezvous env on an Indexed Job's pod template (in place), and the subdomain its Service names when
    it has more than one pod."""
    name = job["metadata"]["name"]
    spec = job["spec"]
    pod = spec["template"].setdefault("spec", {})
    if needs_rendezvous(job):
        pod["subdomain"] = name
    env = rendezvous_env(name, replicas=int(spec.get("parallelism") or 1), port=port, procs=procs)
    for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        set_env(container, env)


def rendezvous_service(job: Mapping[str, Any], placement: Placement, *, port: int) -> Obj:
    """The headless Service that gives the Job's pods DNS names, owned by the created Job (`job` must
    carry its uid, as the API server's answer to the create does)."""
    meta = job["metadata"]
    uid = meta.get("uid")
    if not uid:
        raise ValueError("the Job has no uid yet: create it first")
    labels = workload_labels(placement)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": dict(meta.get("annotations") or {}),
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": uid,
                                 "controller": False, "blockOwnerDeletion": False}],
        },
        "spec": {
            "clusterIP": "None",
            # Peers resolve each other before they are Ready: a rendezvous waits for all of them.
            "publishNotReadyAddresses": True,
            "selector": {k: v for k, v in labels.items() if k != "federator.io/generation"},
            "ports": [{"name": "rendezvous", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


__all__ = ["COMPLETION_INDEX_ANNOTATION", "MASTER_PORT_ANNOTATION", "RENDEZVOUS_ENV", "SINGLE_POD_MASTER",
           "TORCHRUN_MIRRORS", "procs_per_replica",
           "apply_rendezvous", "is_indexed", "master_port", "needs_rendezvous", "rendezvous_env",
           "rendezvous_service"]
