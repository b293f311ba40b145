"""Trust across providers: each provider's CA certifies its own clusters only (real processes over mTLS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from federator.cli.get import list_clusters
from federator.local import LocalFederation
from federator.model import ClusterCapacity
from federator.model.cluster import AcceleratorPool
from federator.security.pki import CertsDir, Identity, IdentityKind, create_ca, init_ca, issue, load_cert
from federator.security.trust import TrustError, load_trust

from support import audit_lines, eventually

FAST = ["--report-interval", "0.3", "--cycle-interval", "0.2", "--lease-seconds", "2"]
FLEET = """
clusters:
  - {name: p2-east, region: east, nodes: [{count: 1, gpuModel: NVIDIA-H100-80GB-HBM3, gpus: 8, cpu: 32, memory: 256Gi}]}
  - {name: p2-west, region: west, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
  - {name: p1-west, region: west, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
  - {name: east-1, region: east, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
  - {name: east-2, region: east, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def cluster(name: str) -> Identity:
    return Identity(IdentityKind.CLUSTER, name)


@pytest.mark.parametrize(("signer", "identity", "problem"), [
    ("p2", cluster("p2-east"), ""),
    ("", cluster("east-1"), ""),
    ("p1", cluster("p2-west"), "cluster 'p2-west' is bound to provider 'p2', but its certificate was signed by "
                               "provider 'p1''s CA"),
    ("", cluster("p2-west"), "bound to provider 'p2', but its certificate was signed by the federation's CA"),
    ("p2", cluster("east-1"), "cluster 'east-1' is not bound to provider 'p2'"),
    ("p2", Identity(IdentityKind.USER, "admin"), "only the federation's CA certifies users"),
    ("rogue", cluster("p2-east"), "signed by no CA of the trust file"),
], ids=["own-provider", "federation-cluster", "other-providers-ca", "federation-ca-for-a-bound-cluster",
        "provider-ca-for-an-unbound-cluster", "provider-ca-for-a-user", "unknown-ca"])
def test_a_providers_ca_certifies_only_the_clusters_bound_to_it(tmp_path: Path, signer: str, identity: Identity,
                                                                problem: str) -> None:
    certs = CertsDir(tmp_path)
    init_ca(certs)
    for name in ("p1", "p2", "rogue"):
        create_ca(certs.provider(name), common_name=f"{name} provider CA")
    certs.trust.write_text("providers:\n"
                           "  p1: {ca: providers/p1/ca.crt, clusters: ['p1-*']}\n"
                           "  p2: {ca: providers/p2/ca.crt, clusters: ['p2-*'], revoked: providers/p2/revoked.txt}\n")
    trust = load_trust(certs.trust, federation_ca=certs.ca_cert)
    where = certs.provider(signer) if signer else certs
    cert = load_cert(issue(where, identity))
    _issuer, got = trust.check(identity, cert)
    assert (problem in got) if problem else got == ""


def _trust_file(tmp_path: Path, acme: str) -> tuple[CertsDir, Path]:
    certs = CertsDir(tmp_path)
    init_ca(certs)
    create_ca(certs.provider("acme"), common_name="acme provider CA")
    certs.trust.write_text("providers:\n"
                           f"  acme: {{ca: providers/acme/ca.crt, clusters: ['acme-*']{acme}}}\n")
    return certs, certs.trust


@pytest.mark.parametrize(("regions", "problem"), [
    (", regions: east", "providers.acme.regions: must list the regions its clusters may claim (leave regions out "
                        "to allow any), got 'east'"),
    (", regions: []", "providers.acme.regions: must list the regions its clusters may claim (leave regions out to "
                      "allow any), got []"),
    (", regions: [east, East-2]", "providers.acme.regions[1]: must be a region name as agents give it (a lower-case "
                                  "DNS name of at most 63 characters), got 'East-2'"),
    (", regions: [east, 7]", "providers.acme.regions[1]: must be a region name as agents give it"),
    (", region: [east]", "providers.acme: must be a mapping {ca, clusters, revoked, regions, clusterRegions, "
                         "maxAccelerators, maxCpu, maxMemory, minPrice, maxPrice} with ca"),
], ids=["not-a-list", "empty", "not-a-region-name", "not-text", "misspelt-field"])
def test_a_bad_regions_value_is_refused_naming_the_field(tmp_path: Path, regions: str, problem: str) -> None:
    certs, path = _trust_file(tmp_path, regions)
    with pytest.raises(TrustError) as err:
        load_trust(path, federation_ca=certs.ca_cert)
    assert str(err.value).startswith(f"{path}: {problem}")


@pytest.mark.parametrize(("bound", "value"), [
    ("", None),
    (", maxAccelerators: 0", 0),  # a provider of CPU-only clusters
    (", maxAccelerators: 512", 512),
], ids=["absent", "zero", "a-count"])
def test_max_accelerators_is_read_from_a_providers_entry(tmp_path: Path, bound: str, value: int | None) -> None:
    certs, path = _trust_file(tmp_path, bound)
    assert load_trust(path, federation_ca=certs.ca_cert).providers["acme"].max_accelerators == value


@pytest.mark.parametrize("bound", ["-1", "512.0", "'512'", "true", "lots", "[512]"],
                         ids=["negative", "a-float", "text", "a-bool", "a-word", "a-list"])
def test_a_bad_max_accelerators_is_refused_naming_the_field(tmp_path: Path, bound: str) -> None:
    certs, path = _trust_file(tmp_path, f", maxAccelerators: {bound}")
    with pytest.raises(TrustError) as err:
        load_trust(path, federation_ca=certs.ca_cert)
    assert str(err.value).startswith(f"{path}: providers.acme.maxAccelerators: must be a whole number of at least 0, "
                                     "the most accelerators one of its clusters may report (leave it out for no "
                                     "bound), got "), err.value


def claiming(accelerators: int = 0, *, cpu_milli: int = 0, memory: int = 0) -> ClusterCapacity:
    pools = (AcceleratorPool("H100", (accelerators,), accelerators, accelerators),) if accelerators else ()
    return ClusterCapacity(accelerator_pools=pools, cpu_milli_allocatable=cpu_milli, cpu_milli_free=cpu_milli,
                           memory_bytes_allocatable=memory, memory_bytes_free=memory)


@pytest.mark.parametrize(("bound", "issuer", "capacity", "problem"), [
    (", maxAccelerators: 16", "acme", claiming(16), ""),
    # over maxAccelerators: not refused, clamped (server/over_bound.py; Trust.accelerator_bound below)
    (", maxAccelerators: 16", "acme", claiming(17), ""),
    (", maxAccelerators: 16", "", claiming(10_000), ""),  # the federation's own clusters: no bound
    ("", "acme", claiming(10_000, cpu_milli=10**9, memory=2**60), ""),  # no bound: any, as before
    (", maxCpu: 64", "acme", claiming(cpu_milli=64_000), ""),
    (", maxCpu: 64", "acme", claiming(cpu_milli=64_001), "capacity.cpu_milli_allocatable: 64.001 CPUs are more "
                                                         "than maxCpu 64, the most the trust file lets one cluster "
                                                         "of provider 'acme' report"),
    (", maxMemory: 1Ti", "acme", claiming(memory=2**40), ""),
    (", maxMemory: 1Ti", "acme", claiming(memory=2**40 + 1), "capacity.memory_bytes_allocatable: 1099511627777 "
                                                             "bytes are more than maxMemory 1099511627776 bytes, the "
                                                             "most the trust file lets one cluster of provider "
                                                             "'acme' report"),
], ids=["at-the-bound", "over-it", "federation-cluster", "provider-without-a-bound", "cpu-at-the-bound",
        "cpu-over-it", "memory-at-the-bound", "memory-over-it"])
def test_a_provider_bound_to_max_accelerators_cpu_or_memory_may_report_at_most_that(
        tmp_path: Path, bound: str, issuer: str, capacity: ClusterCapacity, problem: str) -> None:
    certs, path = _trust_file(tmp_path, bound)
    assert load_trust(path, federation_ca=certs.ca_cert).capacity_problem(issuer, capacity) == problem


@pytest.mark.parametrize(("bound", "issuer", "expected"), [
    (", maxAccelerators: 16", "acme", ("acme", 16)), (", maxAccelerators: 16", "", None), ("", "acme", None)],
    ids=["bound", "federation-cluster", "provider-without-a-bound"])
def test_the_accelerator_bound_a_report_is_clamped_to(tmp_path: Path, bound: str, issuer: str,
                                                      expected: tuple[str, int] | None) -> None:
    certs, path = _trust_file(tmp_path, bound)
    assert load_trust(path, federation_ca=certs.ca_cert).accelerator_bound(issuer) == expected


@pytest.mark.parametrize(("key", "bound"), [("maxCpu", "-4"), ("maxCpu", "lots"), ("maxCpu", "true"),
                                            ("maxMemory", "[1Ti]"), ("maxMemory", "'-1Gi'")])
def test_a_bad_max_cpu_or_memory_is_refused_naming_the_field(tmp_path: Path, key: str, bound: str) -> None:
    certs, path = _trust_file(tmp_path, f", {key}: {bound}")
    with pytest.raises(TrustError) as err:
        load_trust(path, federation_ca=certs.ca_cert)
    assert str(err.value).startswith(f"{path}: providers.acme.{key}: must be a quantity, the most allocatable "), \
        err.value


@pytest.mark.parametrize(("regions", "issuer", "region", "problem"), [
    (", regions: [east, north]", "acme", "north", ""),
    (", regions: [east, north]", "acme", "west", "hello.region: 'west' is not a region of provider 'acme'; the "
                                                 "trust file binds its clusters to regions east, north"),
    (", regions: [east, north]", "", "west", ""),  # the federation's own clusters: any region
    ("", "acme", "west", ""),  # no regions: any, as before regions existed
], ids=["its-own-region", "another-region", "federation-cluster", "provider-without-regions"])
def test_a_provider_bound_to_regions_may_claim_only_those(tmp_path: Path, regions: str, issuer: str, region: str,
                                                         problem: str) -> None:
    certs, path = _trust_file(tmp_path, regions)
    assert load_trust(path, federation_ca=certs.ca_cert).region_problem(issuer, region) == problem


@pytest.mark.parametrize(("issuer", "label", "problem"), [
    ("acme", "", ""),
    ("acme", "acme", ""),
    ("acme", "globex", "hello.labels[federator.io/provider]: 'globex' is not the provider of cluster 'acme-1': its "
                       "certificate comes from provider 'acme''s CA (leave the label out, or give --provider acme)"),
    ("acme", "hooli", "hello.labels[federator.io/provider]: 'hooli' is not the provider of cluster 'acme-1'"),
    ("", "acme", "hello.labels[federator.io/provider]: cluster 'acme-1' holds a certificate from the federation's "
                 "CA, so its label federator.io/provider may not name provider 'acme'"),
    ("", "hooli", ""),  # the federation's own clusters may name who runs them, if no provider of the file
], ids=["no-label", "its-own", "another-provider", "an-unlisted-name", "federation-ca-naming-a-provider",
        "federation-ca-naming-an-outsider"])
def test_the_provider_label_must_name_the_provider_of_the_certificate(tmp_path: Path, issuer: str, label: str,
                                                                      problem: str) -> None:
    """Usage is accounted by the label: a cluster naming another provider would bill its usage to it."""
    certs, path = _trust_file(tmp_path, "")
    labels = {"federator.io/provider": label} if label else {}
    got = load_trust(path, federation_ca=certs.ca_cert).provider_label_problem(issuer, "acme-1", labels)
    assert got.startswith(problem) if problem else got == ""


def test_an_agent_with_provider_2s_certificate_is_accepted_for_provider_2s_clusters_only(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    audit = tmp_path / "audit.jsonl"
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet, serve_args=[*FAST, "--audit-log", str(audit)])
    certs = fed.certs
    init_ca(certs)
    for name, pattern in (("p1", "p1-*"), ("p2", "p2-*")):
        out = cli("certs", "provider", "--dir", str(certs.root), "--name", name, "--clusters", pattern)
        assert out.returncode == 0, out.stderr
    for provider, name in (("p2", "p2-east"), ("p1", "p2-west"), ("p2", "east-1")):
        outside = [] if name.startswith(f"{provider}-") else ["--outside-trust"]  # the tool refuses them else
        out = cli("certs", "issue", "--dir", str(certs.root), "--provider", provider, "--cluster", name, *outside)
        assert out.returncode == 0, out.stderr
    issue(certs, cluster("p1-west"))  # the federation's CA, for a cluster bound to p1
    issue(certs, cluster("east-2"))  # the federation's CA, for a cluster no provider claims: rightly its own
    assert (certs.root / "trust-bundle.pem").read_bytes().count(b"BEGIN CERTIFICATE") == 3
    try:
        fed.start_server()
        fed.start_agent("p2-east", "--provider", "p2")
        fed.start_agent("p2-west", "--provider", "p1")
        fed.start_agent("east-1", "--provider", "p2")
        fed.start_agent("p1-west")
        fed.start_agent("east-2", "--label", "federator.io/provider=p1")  # and yet it says it is p1's
        eventually(lambda: [c["name"] for c in list_clusters(fed.client)] == ["p2-east"], what="p2-east only")
        [p2] = list_clusters(fed.client)
        assert p2["state"] == "Ready" and p2["labels"]["federator.io/provider"] == "p2"
        for name, why in (("p2-west", "is bound to provider 'p2', but its certificate was signed by provider 'p1'"),
                          ("east-1", "is not bound to provider 'p2'"),
                          ("p1-west", "is bound to provider 'p1', but its certificate was signed by the federation"),
                          ("east-2", "holds a certificate from the federation's CA, so its label federator.io/provider "
                                     "may not name provider 'p1'")):
            eventually(lambda name=name, why=why: why in (fed.workdir / f"agent-{name}.log").read_text(),  # type: ignore[misc]
                       what=f"{name}'s agent told why it is refused")
        # revocation is per provider: p2 revokes its own cluster in its own list
        out = cli("certs", "revoke", "--dir", str(certs.root), "--provider", "p2", "--cluster", "p2-east")
        assert out.returncode == 0, out.stderr
        assert "cluster p2-east" in (certs.provider("p2").revoked).read_text()
        eventually(lambda: list_clusters(fed.client)[0]["state"] == "Partitioned", what="p2-east cut off")
        eventually(lambda: "provider 'p2' revoked" in (fed.workdir / "agent-p2-east.log").read_text(),
                   what="p2-east's agent told why")
        lines = audit_lines(audit)
        # p2-east alone registered (server/cluster_regions.py), then the revocation, audited
        assert [x["object"] for x in lines if x["action"] == "cluster.register"] == \
            [{"kind": "MemberCluster", "name": "p2-east", "region": "east", "bound_by": "",
              "provider": "p2"}]
        [line] = [x for x in lines if x["action"] != "cluster.register"]
        assert (line["action"], line["result"], line["object"]) == (
            "certificate.revoke", "accepted", {"kind": "Certificate", "revoked": "cluster p2-east", "provider": "p2"})
    finally:
        fed.stop()
