"""An elastic gang's Job on its member: run at the count placed, torchrun told min:max, pod retries allowed.

Why: the federator's Job for a gang had `backoffLimit: 0` (one replica failing fails the gang) and torchrun a fixed
node count, so a gang placed below its size (JobSpec.min_replicas, model/elastic.py) could neither run a torchrun
`--nnodes=MIN:MAX` rendezvous nor survive a lost worker, which is what elastic training is for (outside QA, ML
platform E5). For an elastic gang the federator's Indexed Job (its completions and parallelism are already the
placement's count, registry.default_object) gets:

    PET_NNODES         "MIN:MAX": JobSpec.min_replicas and replicas; NNODES and WORLD_SIZE stay the count placed
    PET_RDZV_BACKEND   c10d: torchrun's default ("static") waits for MAX nodes and takes no range
    PET_RDZV_ENDPOINT  replica 0's name and the rendezvous port (MASTER_ADDR:MASTER_PORT): replica 0 hosts the store
    PET_RDZV_ID        the Job's name, one rendezvous per placement
    PET_MAX_RESTARTS   ELASTIC_RETRIES: torchrun restarts its workers in place after a peer's loss this many times
    backoffLimit       ELASTIC_RETRIES x the count placed: the Job replaces a failed pod (same index) that many
                       times in all before it fails, and the new pod joins the rendezvous again

A user's own variable of these names is replaced, as for the other rendezvous variables (rendezvous.py); a command
line flag still wins. A brought workload keeps its own: a PyTorchJob with an elasticPolicy already has the training
operator set PET_NNODES and the c10d rendezvous, and its runPolicy.backoffLimit is the user's; the federator sets
only its Workers' count to the one placed (kubeflow.PyTorchJobAdapter.scale).
"""

from __future__ import annotations

from federator.backends.kube.workloads.common import Obj, set_env
from federator.backends.kube.workloads.rendezvous import SINGLE_POD_MASTER
from federator.model import JobKind, JobSpec

#: Pod replacements per placed replica (the Job's backoffLimit is this times the count placed), and torchrun's
#: in-place worker restarts (PET_MAX_RESTARTS): 3, torchrun's own documented example for elastic jobs.
ELASTIC_RETRIES = 3
RDZV_BACKEND = "c10d"


def apply_elastic(job: Obj, spec: JobSpec, *, port: int) -> None:
    """An elastic gang's settings on the federator's Indexed Job (in place); nothing for any other job."""
    if not spec.elastic or spec.kind is not JobKind.TRAINING or spec.workload_json:
        return
    name = job["metadata"]["name"]
    body = job["spec"]
    placed = int(body.get("parallelism") or 1)
    body["backoffLimit"] = ELASTIC_RETRIES * placed
    master = f"{name}-0.{name}" if placed > 1 else SINGLE_POD_MASTER
    env: list[Obj] = [
        {"name": "PET_NNODES", "value": f"{spec.min_replicas}:{spec.replicas}"},
        {"name": "PET_RDZV_BACKEND", "value": RDZV_BACKEND},
        {"name": "PET_RDZV_ENDPOINT", "value": f"{master}:{port}"},
        {"name": "PET_RDZV_ID", "value": name},
        {"name": "PET_MAX_RESTARTS", "value": str(ELASTIC_RETRIES)},
    ]
    pod = body["template"].setdefault("spec", {})
    for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        set_env(container, env)


__all__ = ["ELASTIC_RETRIES", "RDZV_BACKEND", "apply_elastic"]
