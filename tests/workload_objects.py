"""One realistic object of every supported workload kind (importable as `workload_objects`).

The unit tests read their pod sets and render them; the Kubernetes tests create
them on a real API server against each kind's real CRD, so these stay objects
the controllers' own schemas accept.
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]


def _pod(name: str, *, gpus: int = 0, cpu: str = "1", memory: str = "1Gi", command: str = "sleep 5") -> Obj:
    requests: Obj = {"cpu": cpu, "memory": memory}
    limits: Obj = {}
    if gpus:
        requests["nvidia.com/gpu"] = gpus
        limits["nvidia.com/gpu"] = gpus
    resources: Obj = {"requests": requests, **({"limits": limits} if limits else {})}
    return {"metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": name, "image": "busybox:1.36", "command": ["sh", "-c", command],
                                     "resources": resources}]}}


def batch_job() -> Obj:
    pod = _pod("trainer", gpus=8)
    pod["spec"]["restartPolicy"] = "Never"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "mine"},
            "spec": {"completionMode": "Indexed", "completions": 2, "parallelism": 2, "backoffLimit": 0,
                     "template": pod}}


def deployment() -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "serve"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "serve"}}, "template": _pod("serve", gpus=1)}}


def statefulset() -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "kv"},
            "spec": {"replicas": 2, "serviceName": "kv", "selector": {"matchLabels": {"app": "kv"}},
                     "template": _pod("kv", gpus=1)}}


def jobset() -> Obj:
    """A driver (CPU) and 2 workers of 8 GPUs: the federator counts 2 replicas x 8 GPUs."""
    driver, worker = _pod("driver"), _pod("worker", gpus=8, cpu="8", memory="64Gi")
    for p in (driver, worker):
        p["spec"]["restartPolicy"] = "Never"
    return {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "pretrain"},
            "spec": {"replicatedJobs": [
                {"name": "driver", "replicas": 1,
                 "template": {"spec": {"parallelism": 1, "completions": 1, "backoffLimit": 0, "template": driver}}},
                {"name": "workers", "replicas": 1,
                 "template": {"spec": {"parallelism": 2, "completions": 2, "backoffLimit": 0,
                                       "completionMode": "Indexed", "template": worker}}},
            ]}}


def leaderworkerset() -> Obj:
    """3 groups of a leader and 3 workers, 8 GPUs each pod: 12 replicas in groups of 4."""
    return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "metadata": {"name": "llm"},
            "spec": {"replicas": 3, "leaderWorkerTemplate": {
                "size": 4, "leaderTemplate": _pod("leader", gpus=8), "workerTemplate": _pod("worker", gpus=8)}}}


def pytorchjob() -> Obj:
    master, worker = _pod("pytorch", gpus=8), _pod("pytorch", gpus=8)
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "ddp"},
            "spec": {"pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": master},
                "Worker": {"replicas": 3, "restartPolicy": "OnFailure", "template": worker}}}}


def trainjob() -> Obj:
    return {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "metadata": {"name": "tune"},
            "spec": {"runtimeRef": {"name": "torch-distributed"},
                     "trainer": {"image": "busybox:1.36", "command": ["sh", "-c", "sleep 5"], "numNodes": 2,
                                 "resourcesPerNode": {"requests": {"cpu": "4", "memory": "16Gi",
                                                                   "nvidia.com/gpu": 8},
                                                      "limits": {"nvidia.com/gpu": 8}}}}}


def rayjob() -> Obj:
    head, workers = _pod("ray-head", cpu="2"), _pod("ray-worker", gpus=4)
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "sweep"},
            "spec": {"entrypoint": "python -c 'print(1)'", "rayClusterSpec": {
                "headGroupSpec": {"rayStartParams": {}, "template": head},
                "workerGroupSpecs": [{"groupName": "gpu", "replicas": 2, "minReplicas": 2, "maxReplicas": 2,
                                      "numOfHosts": 1, "rayStartParams": {}, "template": workers}]}}}


ALL = {"Job": batch_job, "Deployment": deployment, "StatefulSet": statefulset, "JobSet": jobset,
       "LeaderWorkerSet": leaderworkerset, "PyTorchJob": pytorchjob, "TrainJob": trainjob, "RayJob": rayjob}


def fresh(kind: str) -> Obj:
    return copy.deepcopy(ALL[kind]())
