"""A FederatedJob's spec.regions.weights and spec.prefer against a real API server (the test bed's host) with the
chart's CRD (outside migration QA, M8 and M11): `kubectl apply` of a weighted inference job is kept and placed
3:1 over east and west, a bad weight or preference is refused by the API server naming the field, weights with
minRegions or on a training job are refused saying why, and spec.prefer is immutable; a job that prefers cheapest
goes to the cheapest member.

The federator runs in this process (store, controller with its informer); its members are reported to it
directly, as the server tests do.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from federator.model import PRICE_LABEL, Preference

from builders import cluster, pool
from kube_support import H100, Testbed, controller_running, fj_yaml, host_bed
from support import accepted

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "placement-asks"
host = host_bed(NAMESPACE)


@pytest.mark.parametrize(("spec", "said"), [
    ({"kind": "inference", "replicas": 4, "regions": {"weights": {"east": 0}}}, "spec.regions.weights"),
    ({"kind": "inference", "replicas": 4, "regions": {"weights": {"east": 1001}}}, "spec.regions.weights"),
    ({"kind": "training", "regions": {"weights": {"east": 1}}},
     "spec.regions.weights: applies to inference jobs only"),
    ({"kind": "inference", "replicas": 4, "regions": {"weights": {"east": 1, "west": 1}, "minRegions": 2}},
     "spec.regions.weights: decides alone how the replicas split over regions"),
    ({"kind": "inference", "replicas": 4, "prefer": "fastest"}, "spec.prefer"),
], ids=["zero", "over-1000", "training", "with-min-regions", "unknown-preference"])
def test_a_bad_ask_is_refused_by_the_api_server_naming_the_field(host: Testbed, spec: dict[str, Any],
                                                                 said: str) -> None:
    refused = host.kubectl("host", "apply", "-f", "-", input=fj_yaml("bad", NAMESPACE, **spec), check=False)
    assert refused.returncode != 0
    assert said in refused.stderr, refused.stderr


def test_a_weighted_federatedjob_runs_3_to_1_and_a_cheap_one_on_the_cheapest(host: Testbed) -> None:
    def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> Any:
        return host.kubectl("host", *args, "-n", NAMESPACE, input=stdin, check=check)

    async def go() -> None:
        async with controller_running(host, NAMESPACE) as fx:
            for name, price in (("east-1", "3.5"), ("west-1", "1.9"), ("central-1", "")):
                region = name.split("-")[0]
                rec = fx.fed.connect(cluster=name, region=region, labels={PRICE_LABEL: price} if price else {})
                fx.fed.report(rec, cluster(name, region, pool(H100, nodes=2, free=8)).capacity)
            kubectl("apply", "-f", "-", stdin=fj_yaml("web", NAMESPACE, kind="inference", replicas=8,
                                                      regions={"weights": {"east": 3, "west": 1}}))
            await accepted(fx.fed, NAMESPACE, "web")
            web = fx.fed.get("web")
            assert web.spec.region_weights == (("east", 3), ("west", 1))  # the CRD kept it; the controller read it
            fx.fed.schedule_once()
            by_region: dict[str, int] = {}
            for p in web.placements:
                by_region[p.region] = by_region.get(p.region, 0) + p.replicas
            assert by_region == {"east": 6, "west": 2}
            kept = json.loads(kubectl("get", "fj", "web", "-o", "json").stdout)["spec"]["regions"]["weights"]
            assert kept == {"east": 3, "west": 1}

            kubectl("apply", "-f", "-", stdin=fj_yaml("pretrain", NAMESPACE, prefer="cheapest",
                                                      resources={"cpu": "1", "nvidia.com/gpu": 8}))
            await accepted(fx.fed, NAMESPACE, "pretrain")
            pretrain = fx.fed.get("pretrain")
            assert pretrain.spec.prefer is Preference.CHEAPEST
            fx.fed.schedule_once()
            assert [p.cluster for p in pretrain.placements] == ["west-1"]  # 1.9 an accelerator-hour
            changed = kubectl("patch", "fj", "pretrain", "--type=merge", "-p",
                              json.dumps({"spec": {"prefer": None}}), check=False)
            assert changed.returncode != 0
            assert "spec.prefer: is immutable" in changed.stderr, changed.stderr

    asyncio.run(go())
