"""An elastic gang's Job on its member: run at the count placed, torchrun told min:max, pod retries allowed.

Why: the federator's Job for a gang had `backoffLimit: 0` (one replica failing fails the gang) and torchrun a fixed
node count, so a gang placed below its size (JobSpec.min_replicas, model/elastic.py) could neither run a torchrun
`--nnodes=MIN:MAX` rendezvous nor survive a lost worker, which is what elastic training is for (outside QA, ML
platform E5). For an elastic gang the federator's Indexed Job (its completions and parallelism are already the
placement's count, registry.default_object) gets:

    PET_NNODES         "MIN:MAX": JobSpec.min_replicas and replicas; NNODES and WORLD_SIZE stay the count placed
    PET_RDZV_BACKEND   c10d: torchrun's default ("static") waits for MAX nodes and takes no range
    PET_RDZV_ENDPOINT  replica 0's FQDN and the rendezvous port: replica 0 hosts the store (`rendezvous_host`)
    PET_RDZV_ID        the Job's name, one rendezvous per placement
    PET_MAX_RESTARTS   ELASTIC_RETRIES: torchrun restarts its workers in place after a peer's loss this many times
    backoffLimit       ELASTIC_RETRIES x the count placed: the Job replaces a failed pod (same index) that many
                       times in all before it fails, and the new pod joins the rendezvous again; a Job whose
                       replicas all fail at its start is ended by the agent instead (elastic_crash.py, marked by
                       the annotation federator.io/elastic: "MIN:MAX")

A user's own variable of these names is replaced, as for the other rendezvous variables (rendezvous.py); a command
line flag still wins. A brought workload keeps its own: a PyTorchJob with an elasticPolicy already has the training
operator set PET_NNODES and the c10d rendezvous, and its runPolicy.backoffLimit is the user's; the federator sets
only its Workers' count to the one placed (kubeflow.PyTorchJobAdapter.scale).

Which pod hosts the c10d store is torchrun's call, not ours: each torchrun starts the store only when the endpoint's
host "is this machine", and connects to it otherwise. The rule torch applies (`rendezvous/utils.py`, from 1.13 to
2.x; restated here, see tests/backends/kube/test_kube_rendezvous_host.py): the host is this machine when it is
"localhost" or a loopback address, or equals `gethostname()`, or equals the canonical name the resolver gives for
`gethostname()` (getaddrinfo with AI_CANONNAME); torch 2.x adds a match by address (the host's resolved addresses
against this machine's), which needs the host's DNS record to exist already. The endpoint was `<job>-0.<job>`, the
name `MASTER_ADDR` gives: it is neither pod 0's hostname (`<job>-0`) nor its canonical name, so on torch 1.13 no
pod hosted the store (every torchrun a client of a port nobody listened on, the Job's retries spent on it) and on
2.x pod 0 hosted it only if the headless Service's record for it resolved at its start (outside QA, elasticqa63
2). The kubelet writes a pod with `hostname` and `subdomain` into its own /etc/hosts as
`<ip> <hostname>.<subdomain>.<namespace>.svc.<cluster domain> <hostname>`: the first name is what the resolver
gives as the canonical name of `gethostname()` there, on every torch and before any DNS record exists, and peers
reach the same name through the headless Service (rendezvous.py). Kubeflow's PyTorchJob reaches the same end by
one Service per replica named as the pod's hostname; a Job's pods share one Service, and `--rdzv-conf is_host=`
cannot differ per index in one pod template. The cluster domain is the member's (`federator agent
--cluster-domain`, the chart's `clusterDomain`; Kubernetes' default `cluster.local`): one that differs from the
kubelet's matches on no pod, as the old name did. A pod on the host network has the node's hostname and hosts file:
there only torch 2.x's match by address finds it, once cluster DNS answers.
"""

from __future__ import annotations

from federator.backends.kube.elastic_crash import ELASTIC_ANNOTATION
from federator.backends.kube.workloads.common import DEFAULT_CLUSTER_DOMAIN, Obj, set_env
from federator.backends.kube.workloads.rendezvous import SINGLE_POD_MASTER
from federator.model import JobKind, JobSpec

#: Pod replacements per placed replica (the Job's backoffLimit is this times the count placed), and torchrun's
#: in-place worker restarts (PET_MAX_RESTARTS): 3, torchrun's own documented example for elastic jobs.
ELASTIC_RETRIES = 3
RDZV_BACKEND = "c10d"


def rendezvous_host(name: str, namespace: str, *, placed: int, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> str:
    """The c10d store's host: replica 0's FQDN, the name pod 0 finds itself under in its /etc/hosts and its peers
    through the headless Service (the module's docstring says why not `<job>-0.<job>`); loopback for one pod."""
    if placed <= 1:
        return SINGLE_POD_MASTER
    return f"{name}-0.{name}.{namespace}.svc.{cluster_domain.strip('.')}"


def apply_elastic(job: Obj, spec: JobSpec, *, port: int, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> None:
    """An elastic gang's settings on the federator's Indexed Job (in place); nothing for any other job."""
    if not spec.elastic or spec.kind is not JobKind.TRAINING or spec.workload_json:
        return
    name = job["metadata"]["name"]
    body = job["spec"]
    placed = int(body.get("parallelism") or 1)
    body["backoffLimit"] = ELASTIC_RETRIES * placed
    # The agent's mark of an elastic gang's Job: one whose replicas all fail at its start ends then (elastic_crash.py)
    job["metadata"].setdefault("annotations", {})[ELASTIC_ANNOTATION] = f"{spec.min_replicas}:{spec.replicas}"
    master = rendezvous_host(name, str(job["metadata"].get("namespace") or "default"), placed=placed,
                             cluster_domain=cluster_domain)
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


__all__ = ["ELASTIC_RETRIES", "RDZV_BACKEND", "apply_elastic", "rendezvous_host"]
