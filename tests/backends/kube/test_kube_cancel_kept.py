"""A FederatedJob deleted while its member's agent is away: its cancel outlives the object and a federator restart.

Outside QA F7: `kubectl delete fj` returned at once, the cancel was recorded on the object's own status and went
with it; a federator restarted before the agent was back knew no such job, and the agent's 16-GPU Job was an
orphan held for --orphan-grace. Now the placements are recorded on the MemberCluster before the finalizer goes
(backends/kube/cancel_records.py), read back at start, and cancelled at once at the agent's re-sync.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import replace
from typing import Any

import pytest

from federator.backends.kube.api import FEDERATED_JOBS, MEMBER_CLUSTERS, KubeError
from federator.backends.kube.resources import FINALIZER
from federator.model import ClusterCapacity, JobPhase
from federator.server.orphans import DELETED_REASON

from builders import cluster, pool
from kube_fakes import HostApi, controller, federated_job, running_on_member_a
from support import cancels_sent

H100 = "NVIDIA-H100-80GB-HBM3"
SPEC = {"kind": "training", "replicas": 2, "resources": {"cpu": "1", "nvidia.com/gpu": 8}}


def _capacity(*placement_ids: str) -> ClusterCapacity:
    return replace(cluster("member-a", "east", pool(H100, nodes=2, free=8)).capacity,
                   placement_ids=frozenset(placement_ids))


async def _delete_while_away(api: HostApi) -> str:
    """A federator places q-train on member-a; the agent goes away; `kubectl delete fj q-train` returns."""
    async with controller(api) as (fed, ctl):
        rec, pid = await running_on_member_a(api, fed, ctl, "q-train", SPEC, _capacity())
        fed.disconnect(rec)  # killed, restarting, its network cut

        obj = api.objects[("research", "q-train")]
        obj["metadata"]["deletionTimestamp"] = "2026-12-05T08:00:00Z"
        await ctl.reconcile("MODIFIED", copy.deepcopy(obj))
        assert FINALIZER not in obj["metadata"]["finalizers"]  # kubectl delete does not wait for the agent
        gone = api.objects.pop(("research", "q-train"))
        await ctl.reconcile("DELETED", gone)
        assert pid in (api.record("member-a") or "")  # on the MemberCluster, before the finalizer went
        return pid


def test_a_job_deleted_while_its_agent_was_away_is_cancelled_at_once_at_the_resync_after_a_restart() -> None:
    async def main() -> None:
        api = HostApi()
        pid = await _delete_while_away(api)

        async with controller(api) as (fed, ctl):  # the federator restarted: a helm upgrade, a failover
            fed.orphans.grace = 1800.0  # --orphan-grace's default
            assert not fed.jobs and not api.list(FEDERATED_JOBS)["items"]
            await ctl.adopt_members()
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.job_update(rec, pid, JobPhase.RUNNING, "")  # the agent's re-sync names what it holds
            assert cancels_sent(rec) == {pid: DELETED_REASON}  # at once, not after --orphan-grace
            fed.report(rec, _capacity(pid))
            assert cancels_sent(rec) == {pid: DELETED_REASON}
            assert fed.metrics.registry.get_sample_value(
                "federator_orphan_placements", {"cluster": "member-a"}) == 0  # no orphan: no alert
            assert fed.metrics.registry.get_sample_value(
                "federator_unconfirmed_cancels", {"cluster": "member-a"}) == 1

            fed.job_update(rec, pid, JobPhase.CANCELLED, "cancelled: workload deleted")  # the member confirms
            fed.report(rec, _capacity())
            await ctl.cancels.flush(fed.orphans.cancels.unwritten(), recreate=ctl.recreate())
            assert api.record("member-a") is None  # the record is gone with the cancel confirmed
            assert fed.metrics.registry.get_sample_value(
                "federator_unconfirmed_cancels", {"cluster": "member-a"}) == 0

    asyncio.run(main())


def test_a_placement_the_agent_no_longer_holds_is_confirmed_by_its_resync() -> None:
    """Deleted by hand in the member meanwhile, or the Cancel reached it before the stream broke: the re-sync's
    report, which follows an update of every placement the agent holds, confirms the cancel."""
    async def main() -> None:
        api = HostApi()
        await _delete_while_away(api)
        async with controller(api) as (fed, ctl):
            await ctl.adopt_members()
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, _capacity())
            assert cancels_sent(rec) == {}
            await ctl.cancels.flush(fed.orphans.cancels.unwritten(), recreate=ctl.recreate())
            assert api.record("member-a") is None

    asyncio.run(main())


def test_a_deletion_whose_record_the_api_server_did_not_take_keeps_the_finalizer() -> None:
    """The record is written before the finalizer goes; not written, the deletion is reconciled again."""
    async def main() -> None:
        api = HostApi()
        async with controller(api) as (fed, ctl):
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, _capacity())
            await ctl.write_members()
            await ctl.adopt_members()
            await ctl.reconcile("ADDED", federated_job(api, "q-train", SPEC))
            fed.schedule_once()
            fed.disconnect(rec)
            obj = api.objects[("research", "q-train")]
            obj["metadata"]["deletionTimestamp"] = "2026-12-05T08:00:00Z"
            real_patch = api.patch

            def refuse_members(res: Any, name: str, body: dict[str, Any], *a: Any, **kw: Any) -> dict[str, Any]:
                if res == MEMBER_CLUSTERS:
                    raise KubeError(503, "etcd leader changed")  # not taken
                return real_patch(res, name, body, *a, **kw)

            api.patch = refuse_members  # type: ignore[method-assign]
            try:
                await ctl.reconcile("MODIFIED", copy.deepcopy(obj))
            except Exception as exc:  # StoreUnavailable: `_work` reconciles it again after retry_seconds
                assert type(exc).__name__ == "StoreUnavailable"
            else:
                raise AssertionError("the deletion went on without its record")
            assert FINALIZER in obj["metadata"]["finalizers"]
            api.patch = real_patch  # type: ignore[method-assign]
            await ctl.reconcile("MODIFIED", copy.deepcopy(obj))
            assert FINALIZER not in obj["metadata"]["finalizers"]
            assert api.record("member-a")

    asyncio.run(main())


def test_with_the_agent_connected_its_cancelled_update_confirms_and_a_finished_job_leaves_no_record() -> None:
    """The record holds only what a member may still run: a deletion the agent hears at once is confirmed by its
    update, and a finished job's placements (in no report, never orphans) are not recorded, so a busy fleet's
    deletions do not fill it."""
    async def main() -> None:
        api = HostApi()
        async with controller(api) as (fed, ctl):
            await ctl.adopt_members()
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, _capacity())
            await ctl.write_members()
            for name in ("running", "done"):
                await ctl.reconcile("ADDED", federated_job(api, name, SPEC))
                fed.schedule_once()
                (pid,) = [p.placement_id for p in fed.get(name).placements]
                fed.job_update(rec, pid, JobPhase.RUNNING, "")
                if name == "done":
                    fed.job_update(rec, pid, JobPhase.SUCCEEDED, "")
                    fed.report(rec, _capacity())
                obj = api.objects[("research", name)]
                obj["metadata"]["deletionTimestamp"] = "2026-12-05T08:00:00Z"
                await ctl.reconcile("MODIFIED", copy.deepcopy(obj))
                assert FINALIZER not in obj["metadata"]["finalizers"]
                cancels_sent(rec)
                if name == "running":
                    assert fed.orphans.cancels.holds("member-a", pid)
                    fed.job_update(rec, pid, JobPhase.CANCELLED, "cancelled: workload deleted")
                assert fed.orphans.cancels.count("member-a") == 0
            await ctl.cancels.flush(fed.orphans.cancels.unwritten(), recreate=ctl.recreate())
            assert api.record("member-a") is None

    asyncio.run(main())


def test_an_orphan_in_kubernetes_mode_is_told_as_a_federatedjob_deleted_not_a_replaced_db(
        caplog: pytest.LogCaptureFixture) -> None:
    """QA F2: a finalizer removed by hand while no federator ran leaves nothing to cancel from; the WARNING (and the
    runbook it points to) must tell that story, not the standalone store's."""
    async def main() -> None:
        async with controller(HostApi()) as (fed, _ctl):
            fed.orphans.grace = 1800.0
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, _capacity("alice-orphan-0a1b2c.g1.member-a"))

    with caplog.at_level(logging.WARNING, logger="federator.server"):
        asyncio.run(main())
    said = " ".join(r.getMessage() for r in caplog.records if "no record of" in r.getMessage())
    assert "a FederatedJob was deleted while no federator was running" in said
    assert "--db" not in said.replace("no --db was replaced", "")
    # after a host etcd restore, creating it again runs a second copy beside the orphan (outside QA, kube DR, K2)
    assert "the host's etcd was restored from a snapshot older than the job" in said
    assert "a FederatedJob created again is a new job, which starts from the beginning beside it" in said


def test_a_federatedjob_whose_finalizer_was_removed_while_the_leader_ran_is_recorded_too() -> None:
    """Gone without the deletion passing through the finalizer (QA F2, with a leader running): the watch's DELETED
    cancels the job, and its cancel is kept all the same."""
    async def main() -> None:
        api = HostApi()
        async with controller(api) as (fed, ctl):
            await ctl.adopt_members()
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(rec, _capacity())
            await ctl.write_members()
            await ctl.reconcile("ADDED", federated_job(api, "stripped", SPEC))
            fed.schedule_once()
            (pid,) = [p.placement_id for p in fed.get("stripped").placements]
            fed.disconnect(rec)
            gone = api.objects.pop(("research", "stripped"))
            await ctl.reconcile("DELETED", gone)
            assert pid in (api.record("member-a") or "")

    asyncio.run(main())


def test_an_agent_that_resynced_before_the_records_were_read_is_told_once_they_are() -> None:
    """gRPC serves before the controller starts: an agent quick to re-sync named its placement to a federator that
    did not know it yet (an orphan, held); the record read then cancels it at once."""
    async def main() -> None:
        api = HostApi()
        pid = await _delete_while_away(api)
        async with controller(api) as (fed, ctl):
            fed.orphans.grace = 1800.0
            rec = fed.connect(cluster="member-a", region="east", labels={})
            fed.job_update(rec, pid, JobPhase.RUNNING, "")
            fed.report(rec, _capacity(pid))
            assert cancels_sent(rec) == {}  # held: the records are not read yet
            await ctl.adopt_members()
            assert cancels_sent(rec) == {pid: DELETED_REASON}

    asyncio.run(main())


def test_a_job_moved_off_a_lost_cluster_then_deleted_has_the_lost_copy_cancelled_at_once_after_a_restart() -> None:
    """A requeue keeps no history of the placements it superseded: the cancel for member-a's copy of a job moved off
    it while Lost was dropped (its agent away), and once the job was deleted and the federator restarted, nothing
    knew that copy; when member-a came back its 16 GPUs were an orphan, held for --orphan-grace. A cancel dropped
    for an agent that is away is recorded now (Orphans.unsent), durable on the MemberCluster."""
    async def main() -> None:
        api = HostApi()
        clock = [1_000_000.0]
        async with controller(api) as (fed, ctl):
            fed.clock = lambda: clock[0]
            await ctl.adopt_members()
            a = fed.connect(cluster="member-a", region="east", labels={})
            fed.report(a, _capacity())
            b = fed.connect(cluster="member-b", region="east", labels={})
            fed.report(b, replace(cluster("member-b", "east", pool(H100, nodes=2, free=8)).capacity))
            await ctl.write_members()
            await ctl.reconcile("ADDED", federated_job(api, "q-train", SPEC))
            job = fed.get("q-train")
            fed.schedule_once()
            (old,) = [p for p in job.placements]
            first, other = (a, b) if old.cluster == "member-a" else (b, a)
            fed.job_update(first, old.placement_id, JobPhase.RUNNING, "")
            fed.disconnect(first)  # its network cut: Partitioned, then Lost
            clock[0] += fed.lease_seconds + 1
            fed.report(other, replace(cluster(other.name, "east", pool(H100, nodes=2, free=8)).capacity))
            fed.check_leases()
            clock[0] += fed.lost_after_seconds + 1
            fed.report(other, replace(cluster(other.name, "east", pool(H100, nodes=2, free=8)).capacity))
            fed.check_leases()
            fed.schedule_once()
            await asyncio.to_thread(fed.journal.drain)  # the re-queue's write landed: its cancels sent (requeue.py)
            await asyncio.sleep(0)
            (new,) = [p.placement_id for p in job.placements]
            assert new.endswith(other.name)  # moved
            assert fed.orphans.cancels.holds(first.name, old.placement_id)

            obj = api.objects[("research", "q-train")]
            obj["metadata"]["deletionTimestamp"] = "2026-12-05T08:00:00Z"
            await ctl.reconcile("MODIFIED", copy.deepcopy(obj))
            fed.job_update(other, new, JobPhase.CANCELLED, "cancelled: workload deleted")  # the live copy confirms
            gone = api.objects.pop(("research", "q-train"))
            await ctl.reconcile("DELETED", gone)
            assert old.placement_id in (api.record(first.name) or "")  # durable before the restart

        async with controller(api) as (fed, ctl):  # the federator restarted
            fed.orphans.grace = 1800.0
            await ctl.adopt_members()
            rec = fed.connect(cluster=first.name, region="east", labels={})
            fed.job_update(rec, old.placement_id, JobPhase.RUNNING, "")  # the Lost member is back, still running it
            assert cancels_sent(rec) == {old.placement_id: DELETED_REASON}  # at once, not after --orphan-grace
            fed.report(rec, _capacity(old.placement_id) if first.name == "member-a" else replace(
                cluster(first.name, "east", pool(H100, nodes=2, free=8)).capacity,
                placement_ids=frozenset({old.placement_id})))
            assert fed.metrics.registry.get_sample_value(
                "federator_orphan_placements", {"cluster": first.name}) == 0

    asyncio.run(main())
