"""Cordons in Kubernetes mode live in the MemberCluster's spec: `federator cordon` writes them there, a `kubectl
patch` there is read back, and the federator's own MemberCluster writes never clear one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from test_kube_member_clusters import FakeApi, controller, member

from federator.backends.kube.cordons import BY_HAND, KubeCordonStore, cordon_of
from federator.model import ClusterCapacity
from federator.model.cordon import Cordon


def test_a_cordon_is_written_to_the_spec_and_survives_the_federators_own_writes(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    api = FakeApi([member("east-1", "Ready")])
    fed, ctl = controller(tmp_path, api, now)
    fed.cordons.attach(KubeCordonStore(api, clock=lambda: now[0]))  # type: ignore[arg-type]
    fed.report(fed.connect(cluster="east-1", region="east", labels={}), ClusterCapacity())
    assert asyncio.run(fed.cordons.cordon("east-1", Cordon("admin", now[0], "driver upgrade")))
    spec = api.objects["east-1"]["spec"]
    assert (spec["cordoned"], spec["cordonReason"], spec["cordonedBy"], spec["cordonedAt"]) == \
        (True, "driver upgrade", "admin", "2023-11-14T22:13:20Z")
    asyncio.run(ctl.write_members())  # patches spec.region and spec.labels
    assert api.objects["east-1"]["spec"]["cordoned"] is True

    now[0] += 10
    asyncio.run(ctl.read_cordons())
    assert fed.cordons.get("east-1") == Cordon("admin", 1_700_000_000.0, "driver upgrade")  # as written
    assert asyncio.run(fed.cordons.uncordon("east-1")) is not None
    assert api.objects["east-1"]["spec"]["cordoned"] is None  # a merge patch's null removes it


def test_kubectls_cordon_and_uncordon_are_read_back(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    api = FakeApi([member("east-1", "Ready"), member("west-1", "Ready", region="west")])
    fed, ctl = controller(tmp_path, api, now)
    fed.cordons.attach(KubeCordonStore(api, clock=lambda: now[0]), load=False)  # type: ignore[arg-type]
    api.objects["west-1"]["spec"].update({"cordoned": True, "cordonReason": "rack 7 down"})  # kubectl patch mc
    asyncio.run(ctl.read_cordons())
    assert fed.cordons.get("west-1") == Cordon(BY_HAND, now[0], "rack 7 down")

    now[0] += 1
    api.objects["west-1"]["spec"]["cordoned"] = False
    asyncio.run(ctl.read_cordons())
    assert fed.cordons.get("west-1") is not None  # read at most every few seconds
    now[0] += 10
    asyncio.run(ctl.read_cordons())
    assert fed.cordons.get("west-1") is None


def test_a_cluster_cordoned_before_its_agent_connects_gets_an_object_a_restart_does_not_await(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    api = FakeApi([])
    fed, ctl = controller(tmp_path, api, now)
    fed.cordons.attach(KubeCordonStore(api, clock=lambda: now[0]))  # type: ignore[arg-type]
    assert asyncio.run(fed.cordons.cordon("new-1", Cordon("admin", now[0])))
    assert api.objects["new-1"]["spec"] == {"labels": {}, "cordoned": True, "cordonedBy": "admin",
                                            "cordonedAt": "2023-11-14T22:13:20Z"}
    asyncio.run(ctl.adopt_members())
    assert "new-1" not in fed.clusters  # not expected back: no agent of it was ever heard


def test_the_cordons_hold_from_the_start_read_from_the_listing_that_adopts_the_members(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    api = FakeApi([member("east-1", "Ready")])
    api.objects["east-1"]["spec"].update({"cordoned": True, "cordonReason": "rack 7 down"})
    fed, ctl = controller(tmp_path, api, now)
    fed.cordons.attach(KubeCordonStore(api, clock=lambda: now[0]), load=False)  # type: ignore[arg-type]
    asyncio.run(ctl.adopt_members())  # what KubeMode.start runs before the first cycle
    assert fed.cordons.get("east-1") == Cordon(BY_HAND, now[0], "rack 7 down")


def test_a_maintenance_window_is_kept_in_cordon_from_and_until_and_removed_at_its_end(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    api = FakeApi([member("east-1", "Ready")])
    fed, ctl = controller(tmp_path, api, now)
    fed.cordons.attach(KubeCordonStore(api, clock=lambda: now[0]))  # type: ignore[arg-type]
    fed.clock = lambda: now[0]
    window = Cordon("admin", now[0], "switch", window_from=now[0] + 3600, window_until=now[0] + 7200)
    assert asyncio.run(fed.cordons.cordon("east-1", window))
    spec = api.objects["east-1"]["spec"]
    assert (spec["cordoned"], spec["cordonFrom"], spec["cordonUntil"]) == \
        (True, "2023-11-14T23:13:20Z", "2023-11-15T00:13:20Z")
    now[0] += 10
    asyncio.run(ctl.read_cordons())
    assert fed.cordons.get("east-1") == window and fed.cordons.ahead() == {"east-1": now[0] - 10 + 3600}
    now[0] += 7200
    assert asyncio.run(fed.cordons.end_windows()) == ["east-1"]
    assert all(api.objects["east-1"]["spec"].get(k) is None for k in ("cordoned", "cordonFrom", "cordonUntil"))


def test_a_window_written_by_hand_is_never_less_than_asked() -> None:
    assert cordon_of({"cordoned": True, "cordonFrom": "2026-12-08T08:00:00Z", "cordonUntil": "2026-12-08T12:00:00Z"},
                     known=None, now=0.0) == Cordon(BY_HAND, 0.0, "", None, 1796716800.0, 1796731200.0)
    # an end not after the start: until uncordoned; a start that is not a time: from now
    assert cordon_of({"cordoned": True, "cordonFrom": "2026-12-08T08:00:00Z", "cordonUntil": "2026-12-08T07:00:00Z"},
                     known=None, now=0.0) == Cordon(BY_HAND, 0.0, "", None, 1796716800.0, 0.0)
    assert cordon_of({"cordoned": True, "cordonFrom": "next tuesday"}, known=None, now=0.0) == Cordon(BY_HAND, 0.0)
