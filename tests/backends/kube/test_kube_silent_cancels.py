"""The ends awaited of placements cancelled on a silent member, kept on its MemberCluster in Kubernetes mode
(backends/kube/silent_cancels.py), with the controller over a fake API server: written before a deletion's
finalizer goes, read back by the next federator once it restored the members, and dropped when the end is known.

The real path (processes on the test bed, a SIGKILL, the usage record in --db) is
tests/kube/test_kube_silent_cancel_restart_testbed.py; the rule itself, standalone, tests/accounting.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from dataclasses import replace

import pytest

from federator.backends.kube.api import KubeError
from federator.backends.kube.silent_cancels import ANNOTATION, KubeSilentCancelStore, decode, encode
from federator.model import ClusterCapacity, JobPhase
from federator.store.silent_cancels import AwaitedEnd

from builders import cluster, pool
from kube_fakes import HostApi, controller, running_on_member_a

H100 = "NVIDIA-H100-80GB-HBM3"
SPEC = {"kind": "training", "replicas": 1, "resources": {"cpu": "1", "nvidia.com/gpu": 8}}


def _capacity(*placement_ids: str) -> ClusterCapacity:
    return replace(cluster("member-a", "east", pool(H100, nodes=1, free=8)).capacity,
                   placement_ids=frozenset(placement_ids))


def _kept(api: HostApi) -> dict[str, float]:
    text = api.record("member-a", ANNOTATION)
    return decode(text) if text else {}


async def _deleted_while_silent(api: HostApi) -> tuple[str, float]:
    """A federator runs a job on member-a, whose agent then falls silent (Partitioned), and the FederatedJob is
    deleted: (its placement, when it was cancelled)."""
    async with controller(api) as (fed, ctl):
        ctl.silent = KubeSilentCancelStore(api)  # as KubeMode.start makes it
        rec, pid = await running_on_member_a(api, fed, ctl, "train", SPEC, _capacity())
        fed.disconnect(rec)  # its stream fell silent: Partitioned
        obj = api.objects[("research", "train")]
        obj["metadata"]["deletionTimestamp"] = "2026-12-06T08:00:00Z"
        await ctl.reconcile("MODIFIED", copy.deepcopy(obj))
        assert pid in fed.silent_cancels
        kept = _kept(api)  # written before the finalizer went, as the record of cancels is
        assert list(kept) == [pid]
        return pid, kept[pid]


def test_the_next_federator_awaits_the_end_and_takes_the_agents_word() -> None:
    async def main() -> None:
        api = HostApi()
        pid, cancelled_at = await _deleted_while_silent(api)
        async with controller(api) as (fed, ctl):  # restarted (SIGKILL), or a new leader
            ends: list[tuple[str, float]] = []
            fed.silent_cancels.on_end = lambda placement_id, at: ends.append((placement_id, at))
            ctl.silent = KubeSilentCancelStore(api)
            await ctl.adopt_members()  # member-a restored Partitioned, then the wait attached
            assert pid in fed.silent_cancels and not ends
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.job_update(rec, pid, JobPhase.SUCCEEDED, "", ended_at=cancelled_at - 30)  # it ended before
            assert ends == [(pid, cancelled_at - 30)]
            assert pid not in fed.silent_cancels
            assert ctl.silent.flush(ctl.recreate()) == 0
            assert api.record("member-a", ANNOTATION) is None  # known: a third start awaits nothing

    asyncio.run(main())


def test_a_member_lost_meanwhile_ends_it_at_the_last_report_its_membercluster_kept() -> None:
    async def main() -> None:
        api = HostApi()
        pid, cancelled_at = await _deleted_while_silent(api)
        status = api.members["member-a"].setdefault("status", {})
        status["state"] = "Lost"  # as the dead leader wrote it, going Lost before it died
        async with controller(api) as (fed, ctl):
            ends: list[tuple[str, float]] = []
            fed.silent_cancels.on_end = lambda placement_id, at: ends.append((placement_id, at))
            ctl.silent = KubeSilentCancelStore(api)
            await ctl.adopt_members()
            last = fed.clusters["member-a"].last_report_at
            assert ends == [(pid, min(last, cancelled_at))] and last < cancelled_at
            assert pid not in fed.silent_cancels
            ctl.silent.flush(ctl.recreate())
            assert api.record("member-a", ANNOTATION) is None

    asyncio.run(main())


def test_a_record_that_is_not_one_is_said_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        api = HostApi()
        await _deleted_while_silent(api)
        api.members["member-a"]["metadata"]["annotations"][ANNOTATION] = '{"p-1": NaN}'
        async with controller(api) as (fed, ctl):
            ctl.silent = KubeSilentCancelStore(api)
            await ctl.adopt_members()
            assert not fed.silent_cancels

    with caplog.at_level(logging.WARNING, logger="federator.kube"):
        asyncio.run(main())
    assert [r.getMessage() for r in caplog.records if ANNOTATION in r.getMessage()] == [
        "MemberCluster member-a: annotation federator.io/silent-cancels is not a record of silent cancels "
        "(placement 'p-1': its cancel time must be positive seconds, got nan); ignored"]


def test_a_write_the_api_server_refuses_is_said_once_and_made_at_a_later_flush(
        caplog: pytest.LogCaptureFixture) -> None:
    api = HostApi()
    api.members["member-a"] = {"metadata": {"name": "member-a"}, "spec": {"region": "east"}}
    store = KubeSilentCancelStore(api)
    store.loaded_from(api.list("memberclusters")["items"])  # type: ignore[arg-type]
    store.put([AwaitedEnd("member-a", "p-1", 1733390000.25)])
    api.away = KubeError(503, "etcd leader changed")
    with caplog.at_level(logging.WARNING, logger="federator.kube"):
        assert store.flush({"member-a": True}) == 1
        assert store.flush({"member-a": True}) == 1
    assert len([r for r in caplog.records if "silent cancels not recorded" in r.getMessage()]) == 1
    api.away = None
    assert store.flush({"member-a": True}) == 0
    assert _kept(api) == {"p-1": 1733390000.25}
    assert json.loads(api.record("member-a", ANNOTATION) or "") == {"p-1": 1733390000.25}


def test_nothing_is_written_before_the_records_were_read() -> None:
    """The controller's listing at start failed: the first write lists them first, so it replaces nothing."""
    api = HostApi()
    api.members["member-a"] = {"metadata": {"name": "member-a", "annotations": {ANNOTATION: encode({"old": 5.0})}}}
    store = KubeSilentCancelStore(api)
    store.put([AwaitedEnd("member-a", "new", 7.0)])
    assert store.flush({"member-a": True}) == 0
    assert _kept(api) == {"old": 5.0, "new": 7.0}


def test_a_full_record_drops_its_oldest_entries_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    api = HostApi()
    store = KubeSilentCancelStore(api, limit=200)
    store.loaded_from([])
    with caplog.at_level(logging.WARNING, logger="federator.kube"):
        store.put([AwaitedEnd("member-a", f"placement-{i:02}", 1000.0 + i) for i in range(10)])
    api.members["member-a"] = {"metadata": {"name": "member-a"}}
    store.flush({"member-a": False})
    kept = _kept(api)
    assert len(encode(kept)) <= 200 and "placement-09" in kept and "placement-00" not in kept
    assert any("record of placements cancelled while it was silent is full" in r.getMessage()
               for r in caplog.records)
