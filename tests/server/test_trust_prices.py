"""A provider's trust entry bounds the price its clusters claim (`minPrice`, `maxPrice`), over real mTLS sockets.

Security QA secqa61 M1: `spec.prefer: cheapest` sorts by a cluster's price label, which was its agent's word alone,
so a provider claiming 0.01 an accelerator-hour drew every such job of every tenant. Now a claim outside its
provider's bounds is taken at the bound (security/trust.py `Trust.priced_labels`, server/cluster_prices.py); the
price used is what the scheduler, the Price score and `get clusters -o wide` read, the claim shown beside it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scripted_agent import ScriptedStream
from test_drains_grpc import until
from test_services_edge import channel, provider_files, served

from federator.api import convert
from federator.api.v1 import agent_pb2, jobs_pb2, jobs_pb2_grpc
from federator.cli.output import cluster_rows
from federator.jobfile import parse_job
from federator.model import PRICE_LABEL, JobPhase
from federator.model.cluster import CLAIMED_PRICE_LABEL
from federator.security.pki import CertsDir, Identity, IdentityKind, create_ca, init_ca, issue
from federator.security.tls import TlsFiles, cluster_files, user_files
from federator.security.trust import Trust, TrustError, load_trust

from builders import cluster, pool

H100 = "NVIDIA-H100-80GB-HBM3"
TRUST = ("providers:\n"
         "  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*'], minPrice: 2.50, maxPrice: 6}\n"
         "  globex: {ca: providers/globex/ca.crt, clusters: ['gx-*'], minPrice: '3', maxPrice: '3'}\n")


@pytest.fixture
def certs(tmp_path: Path) -> CertsDir:
    """The federation's CA with cluster west-1 and user alice; providers acme (acme-1) and globex (gx-1)."""
    c = CertsDir(tmp_path)
    init_ca(c)
    issue(c, Identity(IdentityKind.CLUSTER, "west-1"))
    issue(c, Identity(IdentityKind.USER, "alice"))
    for name, member in (("acme", "acme-1"), ("globex", "gx-1")):
        create_ca(c.provider(name), common_name=f"{name} provider CA")
        issue(c.provider(name), Identity(IdentityKind.CLUSTER, member))
    c.trust.write_text(TRUST)
    return c


class Member(ScriptedStream):
    """A member of two 8-H100 nodes claiming `price` (none if ""), its agent running what it is sent."""

    def __init__(self, name: str, *, price: str, tls: TlsFiles) -> None:
        super().__init__(name, agent_pb2.Hello(cluster=name, region="r", labels={PRICE_LABEL: price} if price else {}),
                         convert.capacity_to_pb(cluster(name, "r", pool(H100, nodes=2)).capacity))
        self.tls = tls

    def answer(self, placement_id: str) -> None:
        self.send(ack=agent_pb2.Ack(placement_id=placement_id, ok=True))
        self.send(job_update=agent_pb2.JobUpdate(placement_id=placement_id,
                                                 phase=convert.phase_to_pb(JobPhase.RUNNING)))


def price_column(labels: dict[str, str]) -> str:
    headers, [row] = cluster_rows([{"name": "c", "region": "r", "state": "Ready", "capacity": None, "placements": 0,
                                    "last_report_at": 0.0, "labels": labels}], wide=True)
    return row[headers.index("PRICE")]


def test_a_providers_price_claim_outside_its_bounds_is_taken_at_the_bound_and_cheapest_follows_it(
        certs: CertsDir) -> None:
    """acme-1 claims 0.01 (acme's minPrice is 2.50), west-1 (the federation's own) 2.20, gx-1 nothing (globex's
    price is 3): a `prefer: cheapest` gang runs on west-1, where acme-1's claim alone used to draw it."""
    trust = load_trust(certs.trust, federation_ca=certs.ca_cert)

    async def go() -> None:
        async with served(certs=certs, trust=trust) as s, channel(s.target, user_files(certs, "alice")) as ch:
            fed = s.fed
            fed.cycle_interval = 0.1
            members = [Member("acme-1", price="0.01", tls=provider_files(certs, "acme", "acme-1")),
                       Member("gx-1", price="", tls=provider_files(certs, "globex", "gx-1")),
                       Member("west-1", price="2.20", tls=cluster_files(certs, "west-1"))]
            loop = asyncio.get_running_loop()
            tasks = [loop.create_task(fed.run())] + [loop.create_task(m.run(s.target, m.tls)) for m in members]
            try:
                for m in members:
                    await until(lambda n=m.name: n in fed.clusters and fed.clusters[n].capacity is not None,
                                f"{m.name} reports")
                labels = {n: fed.clusters[n].labels for n in ("acme-1", "gx-1", "west-1")}
                assert labels["acme-1"][PRICE_LABEL] == "2.5" and labels["acme-1"][CLAIMED_PRICE_LABEL] == "0.01"
                assert labels["gx-1"][PRICE_LABEL] == "3" and labels["gx-1"][CLAIMED_PRICE_LABEL] == "none"
                assert labels["west-1"][PRICE_LABEL] == "2.20" and CLAIMED_PRICE_LABEL not in labels["west-1"]
                assert price_column(labels["acme-1"]) == "2.5/accelerator-hour (claims 0.01)"
                assert price_column(labels["west-1"]) == "2.2/accelerator-hour"

                spec = parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                  "metadata": {"name": "pretrain"},
                                  "spec": {"kind": "training", "prefer": "cheapest",
                                           "resources": {"cpu": "1", "nvidia.com/gpu": 8}}})
                api = jobs_pb2_grpc.JobServiceStub(ch)
                job_id = (await api.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec)),
                                           timeout=5)).job.job_id
                await until(lambda: bool(fed.jobs[job_id].placements), "pretrain placed")
                assert [p.cluster for p in fed.jobs[job_id].placements] == ["west-1"]
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(go())


def test_priced_labels_clamp_into_the_bounds_and_drop_an_agents_own_claimed_label(certs: CertsDir) -> None:
    trust = load_trust(certs.trust, federation_ca=certs.ca_cert)
    assert trust.priced_labels("acme", {PRICE_LABEL: "9.5"}) == {PRICE_LABEL: "6", CLAIMED_PRICE_LABEL: "9.5"}
    assert trust.priced_labels("acme", {PRICE_LABEL: "4"}) == {PRICE_LABEL: "4"}  # within: as claimed
    assert trust.priced_labels("acme", {}) == {}  # a range and no claim: unpriced (sorts after every priced one)
    assert trust.priced_labels("acme", {CLAIMED_PRICE_LABEL: "0"}) == {}  # only the federator says it
    assert trust.priced_labels("", {PRICE_LABEL: "0.01"}) == {PRICE_LABEL: "0.01"}  # the federation's own
    assert Trust().priced_labels("acme", {PRICE_LABEL: "0.01"}) == {PRICE_LABEL: "0.01"}


@pytest.mark.parametrize(("entry", "said"), [
    ("minPrice: -1", "providers.acme.minPrice: must be a price per accelerator-hour, a decimal number of at least 0"),
    ("maxPrice: cheap", "providers.acme.maxPrice: must be a price per accelerator-hour"),
    ("minPrice: true", "providers.acme.minPrice: must be a price per accelerator-hour"),
    ("minPrice: 5, maxPrice: 4", "providers.acme.minPrice: 5 is above maxPrice 4"),
], ids=["negative", "not-a-number", "bool", "min-above-max"])
def test_a_bad_price_bound_is_refused_naming_the_field(certs: CertsDir, entry: str, said: str) -> None:
    certs.trust.write_text(f"providers:\n  acme: {{ca: providers/acme/ca.crt, clusters: ['acme-*'], {entry}}}\n")
    with pytest.raises(TrustError) as err:
        load_trust(certs.trust, federation_ca=certs.ca_cert)
    assert said in str(err.value), err.value


def test_a_reload_bounds_a_live_streams_price_from_its_claim_and_one_without_bounds_gives_the_claim_back(
        certs: CertsDir) -> None:
    """A provider's price bound is applied to a stream already open when the trust file is reloaded (its stream
    goes on); a reload that removes the bound gives the cluster its claim back."""
    from test_trust_reload import Live
    from test_trust_reload import served as served_reloading

    certs.trust.write_text("providers:\n  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*']}\n")

    async def go() -> None:
        async with served_reloading(certs) as s, channel(s.target, provider_files(certs, "acme", "acme-1")) as ch:
            acme = Live(ch, "acme-1", "east", labels={PRICE_LABEL: "0.01"})
            await acme.welcomed()
            await until(lambda: "acme-1" in s.fed.clusters, "acme-1 joins")
            assert s.fed.clusters["acme-1"].labels[PRICE_LABEL] == "0.01"  # no bound yet: as claimed
            s.reload(TRUST)
            assert s.fed.clusters["acme-1"].labels[PRICE_LABEL] == "2.5"
            assert s.fed.clusters["acme-1"].labels[CLAIMED_PRICE_LABEL] == "0.01"
            assert await acme.still_open(0.1)
            s.reload("providers:\n  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*']}\n")
            assert s.fed.clusters["acme-1"].labels[PRICE_LABEL] == "0.01"
            assert CLAIMED_PRICE_LABEL not in s.fed.clusters["acme-1"].labels

    asyncio.run(go())


def test_a_reload_changing_only_a_price_bound_is_logged_as_a_change(certs: CertsDir) -> None:
    from federator.security.trust_reload import describe_change

    before = load_trust(certs.trust, federation_ca=certs.ca_cert)
    certs.trust.write_text(TRUST.replace("minPrice: 2.50", "minPrice: 3"))
    assert describe_change(before, load_trust(certs.trust, federation_ca=certs.ca_cert)) == "changed acme"
