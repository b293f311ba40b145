"""A cluster's region is bound where its trust is issued (security/region_binding.py), over real mTLS gRPC.

Outside compliance QA C2b: provider acme, bound by the trust file to regions east and north, registered its north
data centre acme-1 as "east" and drew the east-only health data: the binding was per provider, so any new cluster of
it could take either region. Now its certificate (`certs issue --cluster NAME --region R`) or the trust file
(`clusterRegions`, or a provider of one region) binds each cluster, and a Hello claiming another region is refused
PERMISSION_DENIED naming both, audited and counted; a cluster bound by neither keeps working, said self-declared.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from test_services_edge import provider_files, run
from test_trust_reload import Live, welcomed

from federator.api.v1 import agent_pb2_grpc
from federator.metrics import Metrics
from federator.security.audit import AuditLog
from federator.security.auth import Authenticator, RevocationList
from federator.security.pki import CertsDir, Identity, IdentityKind, create_ca, init_ca, issue, load_cert, region_of
from federator.security.tls import TlsFiles, server_files
from federator.security.trust import TrustError, load_trust
from federator.security.trust_reload import ReloadResult, TrustFile
from federator.server.app import _subscribe_trust
from federator.server.federator import Federator
from federator.server.reloads import reload_trust
from federator.server.services import AgentService, decode_guard
from federator.store import SqliteJobStore

ACME = "  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*'], regions: [east, north]%s}\n"


def cluster(name: str) -> Identity:
    return Identity(IdentityKind.CLUSTER, name)


@pytest.fixture
def certs(tmp_path: Path) -> CertsDir:
    """The federation's CA with north-1 (its certificate bound to north) and old-1 (bound to nothing); provider
    acme (regions east, north) with acme-1 and acme-2, certificates bound to nothing, and acme-3 bound to east."""
    c = CertsDir(tmp_path / "certs")
    init_ca(c)
    issue(c, cluster("north-1"), region="north")
    issue(c, cluster("old-1"))
    create_ca(c.provider("acme"), common_name="acme provider CA")
    for name in ("acme-1", "acme-2"):
        issue(c.provider("acme"), cluster(name))
    issue(c.provider("acme"), cluster("acme-3"), region="east")
    c.trust.write_text("providers:\n" + ACME % ", clusterRegions: {acme-1: north}")
    return c


@dataclass
class Served:
    fed: Federator
    target: str
    audit: Path
    trust: TrustFile
    metrics: Metrics

    def lines(self, action: str) -> list[dict[str, object]]:
        return [line for line in map(json.loads, self.audit.read_text().splitlines()) if line["action"] == action]

    def refused(self, name: str) -> float:
        return self.metrics.registry.get_sample_value("federator_agent_region_changes_refused_total",
                                                      {"cluster": name}) or 0.0


@asynccontextmanager
async def served(certs: CertsDir, tmp: Path) -> AsyncIterator[Served]:
    metrics = Metrics()
    fed = Federator(store=SqliteJobStore(Path(":memory:")), metrics=metrics, report_interval=60.0)
    trust = TrustFile(certs.trust, federation_ca=certs.ca_cert)
    auth = Authenticator(trust=trust.current, revocations=RevocationList(None))
    audit = AuditLog(tmp / "audit.log")
    agents = AgentService(fed, auth, audit=audit)
    roots = server_files(certs).served(trust.current.bundle_pem())
    _subscribe_trust(trust, auth=auth, roots=roots, agents=agents)
    server = grpc.aio.server(interceptors=[decode_guard(fed)])
    agent_pb2_grpc.add_AgentServiceServicer_to_server(agents, server)
    port = server.add_secure_port("127.0.0.1:0", roots.credentials(require_client_auth=True))
    await server.start()
    try:
        yield Served(fed, f"127.0.0.1:{port}", tmp / "audit.log", trust, metrics)
    finally:
        await server.stop(0)
        fed.cycles.close()
        audit.close()


def own(certs: CertsDir, name: str) -> TlsFiles:
    return TlsFiles(certs.ca_cert, certs.cert(cluster(name)), certs.key(cluster(name)))


def test_a_providers_cluster_bound_by_the_trust_file_may_not_register_in_its_providers_other_region(
        certs: CertsDir, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The QA's case: acme-1 (north data centre) claiming east is refused; claiming north, it joins, bound."""
    async def go() -> None:
        async with served(certs, tmp_path) as s:
            err = await welcomed(s.target, provider_files(certs, "acme", "acme-1"), "acme-1", "east")
            assert err is not None and err.code() is grpc.StatusCode.PERMISSION_DENIED, err
            assert err.details() == (
                "hello.region: cluster 'acme-1' is bound to region 'north' (by its trust file), and its agent claims "
                "'east'; start the agent with --region north, or if it really is in 'east', the operator changes "
                "its region in the trust file (clusterRegions, or the provider's regions)")
            assert "acme-1" not in s.fed.clusters and s.refused("acme-1") == 1
            (line,) = s.lines("cluster.region-change")
            assert (line["result"], line["code"], line["rule"]) == ("refused", "PERMISSION_DENIED", "region-binding")
            assert line["object"] == {"kind": "MemberCluster", "name": "acme-1", "region": "north",
                                      "claimed": "east", "bound_by": "trust file", "provider": "acme"}
            assert await welcomed(s.target, provider_files(certs, "acme", "acme-1"), "acme-1", "north") is None
            assert s.fed.clusters["acme-1"].region == "north"
            (joined,) = s.lines("cluster.register")
            assert joined["object"]["bound_by"] == "trust file"
            assert joined["message"] == "cluster 'acme-1' registered in region 'north'"

    with caplog.at_level(logging.WARNING, logger="federator.server"):
        run(go)
    assert not [r for r in caplog.records if "as its agent declared it" in r.getMessage()]


def test_a_region_in_the_certificate_binds_the_cluster(certs: CertsDir, tmp_path: Path) -> None:
    async def go() -> None:
        async with served(certs, tmp_path) as s:
            err = await welcomed(s.target, own(certs, "north-1"), "north-1", "east")
            assert err is not None and err.code() is grpc.StatusCode.PERMISSION_DENIED, err
            assert err.details() == (
                "hello.region: cluster 'north-1' is bound to region 'north' (by its certificate), and its agent "
                "claims 'east'; start the agent with --region north, or if it really is in 'east', issue it a "
                "certificate with --region east")
            assert s.lines("cluster.region-change")[0]["object"]["bound_by"] == "certificate"
            assert await welcomed(s.target, own(certs, "north-1"), "north-1", "north") is None
            assert s.lines("cluster.register")[0]["object"]["bound_by"] == "certificate"

    run(go)


def test_a_certificate_and_the_trust_file_that_disagree_bind_nothing_a_hello_can_meet(
        certs: CertsDir, tmp_path: Path) -> None:
    certs.trust.write_text("providers:\n" + ACME % ", clusterRegions: {acme-3: north}")

    async def go() -> None:
        async with served(certs, tmp_path) as s:
            for claimed in ("east", "north"):
                err = await welcomed(s.target, provider_files(certs, "acme", "acme-3"), "acme-3", claimed)
                assert err is not None and err.code() is grpc.StatusCode.PERMISSION_DENIED, err
                assert err.details() == (
                    "hello.region: cluster 'acme-3' has no region it may claim: its certificate binds region 'east' "
                    "and the trust file binds 'north'; issue it a certificate with --region north, or change the "
                    "trust file")

    run(go)


def test_a_cluster_bound_by_nothing_keeps_working_and_its_region_is_said_self_declared(
        certs: CertsDir, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Certificates issued before the binding (or without --region) keep working: the first Hello's region."""
    async def go() -> None:
        async with served(certs, tmp_path) as s:
            assert await welcomed(s.target, own(certs, "old-1"), "old-1", "south") is None
            assert await welcomed(s.target, provider_files(certs, "acme", "acme-2"), "acme-2", "east") is None
            assert (s.fed.clusters["old-1"].region, s.fed.clusters["acme-2"].region) == ("south", "east")
            lines = {line["object"]["name"]: line for line in s.lines("cluster.register")}
            assert {name: line["object"]["bound_by"] for name, line in lines.items()} == {"old-1": "", "acme-2": ""}
            assert lines["old-1"]["message"] == ("cluster 'old-1' registered in region 'south' (self-declared by its "
                                                 "agent)")

    with caplog.at_level(logging.WARNING, logger="federator.server"):
        run(go)
    warned = [r.getMessage() for r in caplog.records if "as its agent declared it" in r.getMessage()]
    assert len(warned) == 2 and "federator certs issue --cluster old-1 --region south" in warned[0], warned


def test_a_provider_of_one_region_binds_all_its_clusters_to_it(certs: CertsDir, tmp_path: Path) -> None:
    certs.trust.write_text("providers:\n  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*'], regions: [east]}\n")

    async def go() -> None:
        async with served(certs, tmp_path) as s:
            assert await welcomed(s.target, provider_files(certs, "acme", "acme-2"), "acme-2", "east") is None
            assert s.lines("cluster.register")[0]["object"]["bound_by"] == "trust file"

    run(go)


def test_a_reload_binding_a_live_cluster_to_another_region_ends_its_stream(certs: CertsDir, tmp_path: Path) -> None:
    async def go() -> None:
        from test_services_edge import channel

        async with served(certs, tmp_path) as s, \
                channel(s.target, provider_files(certs, "acme", "acme-2")) as ch:
            live = Live(ch, "acme-2", "east")
            await live.welcomed()
            s.trust.path.write_text("providers:\n" + ACME % ", clusterRegions: {acme-1: north, acme-2: north}")
            assert reload_trust(s.trust, s.metrics, asked=False) is ReloadResult.OK
            ended = await live.ended()
            assert ended.code() is grpc.StatusCode.PERMISSION_DENIED
            assert ended.details().startswith("cluster acme-2: the reloaded trust file no longer admits it: "
                                              "hello.region: cluster 'acme-2' is bound to region 'north' (by its "
                                              "trust file), and its agent claims 'east'")

    run(go)


@pytest.mark.parametrize(("entry", "problem"), [
    (", clusterRegions: {acme-1: west}", "providers.acme.clusterRegions.acme-1: 'west' is not one of the provider's "
                                         "regions (east, north)"),
    (", clusterRegions: {gx-1: east}", "providers.acme.clusterRegions.gx-1: is not a cluster of this provider (its "
                                       "clusters: acme-*)"),
    (", clusterRegions: {acme-1: North}", "providers.acme.clusterRegions.acme-1: must be a region name as agents "
                                          "give it"),
    (", clusterRegions: [acme-1]", "providers.acme.clusterRegions: must map cluster names to the region each is in"),
], ids=["outside-its-regions", "another-providers-cluster", "not-a-region-name", "not-a-mapping"])
def test_a_bad_cluster_regions_entry_is_refused_naming_the_field(certs: CertsDir, entry: str, problem: str) -> None:
    certs.trust.write_text("providers:\n" + ACME % entry)
    with pytest.raises(TrustError) as err:
        load_trust(certs.trust, federation_ca=certs.ca_cert)
    assert str(err.value).startswith(f"{certs.trust}: {problem}"), err.value


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "federator", "certs", *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})


def test_certs_issue_region_binds_a_cluster_certificate_and_is_refused_elsewhere(certs: CertsDir) -> None:
    done = cli("issue", "--dir", str(certs.root), "--cluster", "east-9", "--region", "east")
    assert done.returncode == 0, done.stderr
    assert "bound to region east" in done.stdout
    assert region_of(load_cert(certs.cert(cluster("east-9")))) == "east"
    assert region_of(load_cert(certs.cert(cluster("old-1")))) == ""
    user = cli("issue", "--dir", str(certs.root), "--user", "carol", "--region", "east")
    assert (user.returncode, user.stderr.strip()) == (
        2, "federator certs issue: --region: only a cluster certificate binds a region")
    bad = cli("issue", "--dir", str(certs.root), "--cluster", "east-8", "--region", "East")
    assert bad.returncode == 1 and "--region: must be a region name as agents give it" in bad.stderr
    outside = cli("issue", "--dir", str(certs.root), "--cluster", "acme-9", "--provider", "acme", "--region", "west")
    assert outside.returncode == 1
    assert "--region: 'west' is not a region of provider 'acme'" in outside.stderr
    assert not certs.provider("acme").cert(cluster("acme-9")).exists()


def test_certs_provider_cluster_region_binds_clusters_keeps_them_on_a_rerun_and_refuses_a_bad_one(
        certs: CertsDir) -> None:
    def provider(*extra: str) -> subprocess.CompletedProcess[str]:
        return cli("provider", "--dir", str(certs.root), "--name", "acme", "--clusters", "acme-*", *extra)

    done = provider("--cluster-region", "acme-2=east")
    assert done.returncode == 0, done.stderr
    assert "  bound: acme-1 in north, acme-2 in east" in done.stdout  # the fixture's entry kept, the new one added
    again = provider()  # re-run without the flag (new patterns, an imported CA): the bindings stay
    assert again.returncode == 0, again.stderr
    assert load_trust(certs.trust, federation_ca=certs.ca_cert).providers["acme"].cluster_regions == {
        "acme-1": "north", "acme-2": "east"}
    before = certs.trust.read_text()
    for flag, problem in (("acme-2", "--cluster-region: must be CLUSTER=REGION, got 'acme-2'"),
                          ("acme-2=west", "providers.acme.clusterRegions.acme-2: 'west' is not one of the "
                                          "provider's regions (east, north)")):
        bad = provider("--cluster-region", flag)
        assert bad.returncode == 1 and problem in bad.stderr, bad.stderr
        assert certs.trust.read_text() == before  # refused whole: the file as it was


def test_a_reload_that_only_binds_a_cluster_is_said_a_change_of_its_provider(certs: CertsDir) -> None:
    from federator.security.trust_reload import describe_change

    old = load_trust(certs.trust, federation_ca=certs.ca_cert)
    certs.trust.write_text("providers:\n" + ACME % ", clusterRegions: {acme-1: north, acme-2: east}")
    assert describe_change(old, load_trust(certs.trust, federation_ca=certs.ca_cert)) == "changed acme"


def test_an_agent_without_region_takes_the_one_its_certificate_binds(certs: CertsDir, tmp_path: Path) -> None:
    """0.16.0: `federator agent` with a certificate bound to north and no --region registers its cluster in north,
    over real mTLS from its own process, where its fleet file says east (the certificate wins over that default):
    before, it gave the fleet file's east and was refused at every reconnect."""
    import asyncio
    import os

    from support import until

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("clusters:\n  - name: north-1\n    region: east\n    nodes:\n"
                     "      - {count: 1, gpuModel: NVIDIA-L40S, gpus: 4, cpu: 32, memory: 256Gi}\n")

    async def go() -> None:
        async with served(certs, tmp_path) as s:
            env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
            agent = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "federator", "agent", "--cluster", "north-1", "--sim", str(fleet),
                "--certs-dir", str(certs.root), "--server", s.target, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            try:
                await until(lambda: "north-1" in s.fed.clusters or agent.returncode is not None, timeout=120)
                assert agent.returncode is None, agent.returncode
            finally:
                if agent.returncode is None:
                    agent.terminate()
                await agent.wait()
            assert s.fed.clusters["north-1"].region == "north"
            assert s.lines("cluster.register")[0]["object"]["bound_by"] == "certificate"
            assert not s.lines("cluster.region-change")

    run(go)
