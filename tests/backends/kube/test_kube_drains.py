"""Drains in Kubernetes mode live in the MemberCluster's spec beside the cordon (backends/kube/cordons.py):
`federator drain` writes spec.drain, a `kubectl patch` of it is read back (and cordons the cluster), uncordon
removes both, and a CRD too old to keep the field is an error, not a drain gone at the next read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_kube_member_clusters import FakeApi, controller, member

from federator.backends.kube.api import Resource
from federator.backends.kube.cordons import BY_HAND, KubeCordonStore
from federator.backends.kube.member_status import member_status
from federator.model import ClusterCapacity
from federator.model.cordon import Cordon, Drain
from federator.store.errors import StoreUnavailable


def test_a_drain_is_written_to_the_spec_read_back_and_removed_with_the_cordon(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    api = FakeApi([member("east-1", "Ready")])
    fed, ctl = controller(tmp_path, api, now)
    fed.cordons.attach(KubeCordonStore(api, clock=lambda: now[0]))  # type: ignore[arg-type]
    fed.report(fed.connect(cluster="east-1", region="east", labels={}), ClusterCapacity())
    drain = Drain("admin", now[0], "hardware swap")
    assert asyncio.run(fed.cordons.drain("east-1", drain))[0]
    spec = api.objects["east-1"]["spec"]
    assert (spec["cordoned"], spec["drain"], spec["drainReason"], spec["drainedBy"], spec["drainedAt"]) == \
        (True, True, "hardware swap", "admin", "2023-11-14T22:13:20Z")
    now[0] += 10
    asyncio.run(ctl.read_cordons())
    assert fed.cordons.draining() == {"east-1": drain}  # as written
    status = member_status(fed, fed.clusters["east-1"])
    assert (status["stateSummary"], status["drainJobsLeft"]) == ("Ready,Cordoned,Drained", 0)
    assert asyncio.run(fed.cordons.uncordon("east-1")) == Cordon("admin", drain.at, "hardware swap", drain)
    assert (api.objects["east-1"]["spec"]["cordoned"], api.objects["east-1"]["spec"]["drain"]) == (None, None)
    assert member_status(fed, fed.clusters["east-1"])["drainJobsLeft"] is None  # removed by the merge patch


def test_kubectls_drain_alone_cordons_and_drains(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    api = FakeApi([member("west-1", "Ready", region="west")])
    fed, ctl = controller(tmp_path, api, now)
    fed.cordons.attach(KubeCordonStore(api, clock=lambda: now[0]), load=False)  # type: ignore[arg-type]
    api.objects["west-1"]["spec"].update({"drain": True, "drainReason": "rack 7 retired"})  # kubectl patch mc
    asyncio.run(ctl.read_cordons())
    drain = Drain(BY_HAND, now[0], "rack 7 retired")
    assert fed.cordons.get("west-1") == Cordon(BY_HAND, now[0], "rack 7 retired", drain)
    assert "west-1" in fed.cordons.names()


def test_an_admins_cordon_over_a_providers_drain_is_written_and_read_back_as_the_admins(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    api = FakeApi([member("acme-1", "Ready")])
    fed, ctl = controller(tmp_path, api, now)
    fed.cordons.attach(KubeCordonStore(api, clock=lambda: now[0]))  # type: ignore[arg-type]
    drain = Drain("provider acme (cluster acme-1)", now[0], "driver upgrade")
    assert asyncio.run(fed.cordons.drain("acme-1", drain))[0]
    assert asyncio.run(fed.cordons.cordon("acme-1", Cordon("admin", now[0] + 5, "incident 12")))  # taken over
    spec = api.objects["acme-1"]["spec"]
    assert (spec["cordonedBy"], spec["cordonReason"], spec["drain"], spec["drainedBy"]) == \
        ("admin", "incident 12", True, "provider acme (cluster acme-1)")
    now[0] += 10
    asyncio.run(ctl.read_cordons())
    assert fed.cordons.get("acme-1") == Cordon("admin", drain.at + 5, "incident 12", drain)
    assert KubeCordonStore(api).load() == {"acme-1": Cordon("admin", drain.at + 5, "incident 12", drain)}  # restart


class OldCrdApi(FakeApi):
    """A MemberCluster CRD from before spec.drain: the API server prunes the field without a word."""

    def patch(self, res: Resource, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        spec = {k: v for k, v in (body.get("spec") or {}).items() if not k.startswith("drain")}
        return super().patch(res, name, {**body, "spec": spec}, namespace, subresource=subresource)


def test_a_crd_that_prunes_spec_drain_is_an_error_naming_the_crd(tmp_path: Path) -> None:
    api = OldCrdApi([member("east-1", "Ready")])
    store = KubeCordonStore(api)  # type: ignore[arg-type]
    with pytest.raises(StoreUnavailable, match="spec.drain was not kept, as the MemberCluster CRD predates it"):
        store.put("east-1", Cordon("admin", 1.0, "", Drain("admin", 1.0)))
    store.put("east-1", Cordon("admin", 1.0))  # a cordon alone is kept as before
