"""An elastic gang's c10d rendezvous host is a name pod 0's own torchrun takes as itself (workloads/elastic.py).

Outside QA, elasticqa63 2: PET_RDZV_ENDPOINT was `<job>-0.<job>:29500`, which is neither pod 0's hostname nor the
canonical name its resolver gives, so torch 1.13 started the store on no pod and torch 2.x only once cluster DNS
already resolved pod 0's record.
"""

from __future__ import annotations

import json

from federator.backends.kube.workloads import build_workload
from federator.backends.kube.workloads.common import RenderOptions
from federator.backends.kube.workloads.elastic import rendezvous_host
from federator.model import JobId, JobKind, JobSpec, Placement, PlacementId, Resources


def kubelet_hosts_line(ip: str, hostname: str, subdomain: str, namespace: str, domain: str) -> list[str]:
    """The /etc/hosts entry the kubelet writes for a pod with `hostname` and `subdomain`: its address, then its
    FQDN, then its hostname. The resolver's canonical name for the hostname is the entry's first name."""
    return [ip, f"{hostname}.{subdomain}.{namespace}.svc.{domain}", hostname]


def torch_takes_as_itself(host: str, *, hostname: str, hosts_entry: list[str], dns: dict[str, str],
                          by_address: bool) -> bool:
    """Whether torchrun's c10d backend starts the store on this machine for endpoint host `host`: the rule of
    torch.distributed.elastic.rendezvous.utils (1.13 to 2.x), restated, not copied. True when the host is
    localhost or a loopback address; or equals the machine's hostname; or equals the canonical name the resolver
    gives for the hostname (here the first name of its /etc/hosts entry). torch 2.x (`by_address`) also takes a
    host whose resolved address (`dns`: name -> address, what cluster DNS answers now) is one of the machine's."""
    if host == "localhost" or host.startswith("127."):
        return True
    if host == hostname:
        return True
    ip, canonical = hosts_entry[0], hosts_entry[1]
    if host == canonical:
        return True
    return by_address and dns.get(host) == ip


def elastic_job(placed: int, namespace: str = "team-a", domain: str = "cluster.local") -> dict:  # type: ignore[type-arg]
    spec = JobSpec(name="ft", kind=JobKind.TRAINING, replicas=4, resources=Resources(8000, 2**30, 8000),
                   pod_template_json=json.dumps({"spec": {"containers": [{"name": "t", "image": "t:1"}]}}),
                   min_replicas=2)
    placement = Placement(placement_id=PlacementId("ft-abc123.g1.member-a"), job_id=JobId("ft-abc123"),
                          cluster="member-a", region="east", replicas=placed, accelerator_model="H100", generation=1)
    return build_workload(placement, spec, namespace=namespace, options=RenderOptions(cluster_domain=domain))


def endpoint_host(job: dict) -> str:  # type: ignore[type-arg]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    return str(env["PET_RDZV_ENDPOINT"]).rsplit(":", 1)[0]


def test_only_pod_0_takes_the_endpoint_as_itself_on_every_torch_before_any_dns_record() -> None:
    job = elastic_job(3)
    name = job["metadata"]["name"]
    host = endpoint_host(job)
    assert job["spec"]["template"]["spec"]["subdomain"] == name  # the kubelet writes the FQDN from these
    for by_address in (False, True):  # torch 1.13's rule, and 2.x's with the address match
        for index in range(3):
            entry = kubelet_hosts_line(f"10.0.0.{index + 1}", f"{name}-{index}", name, "team-a", "cluster.local")
            hosts = torch_takes_as_itself(host, hostname=f"{name}-{index}", hosts_entry=entry, dns={},
                                          by_address=by_address)
            assert hosts is (index == 0), (index, by_address)


def test_the_old_endpoint_was_hosted_by_no_pod_until_dns_answered() -> None:
    """What the fix is for: `<job>-0.<job>` matched pod 0 on no torch without DNS, and on torch 1.13 never."""
    job = elastic_job(2)
    name = job["metadata"]["name"]
    old = f"{name}-0.{name}"
    entry = kubelet_hosts_line("10.0.0.1", f"{name}-0", name, "team-a", "cluster.local")
    assert not torch_takes_as_itself(old, hostname=f"{name}-0", hosts_entry=entry, dns={}, by_address=False)
    assert not torch_takes_as_itself(old, hostname=f"{name}-0", hosts_entry=entry, dns={old: "10.0.0.1"},
                                     by_address=False)
    assert not torch_takes_as_itself(old, hostname=f"{name}-0", hosts_entry=entry, dns={}, by_address=True)


def test_the_members_cluster_domain_names_the_host_and_one_pod_is_loopback() -> None:
    job = elastic_job(2, namespace="ml", domain="corp.example")
    name = job["metadata"]["name"]
    assert endpoint_host(job) == f"{name}-0.{name}.ml.svc.corp.example"
    assert rendezvous_host(name, "ml", placed=1) == "127.0.0.1"  # its own store, no Service
