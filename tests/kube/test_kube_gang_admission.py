"""All-or-nothing on the member, with real processes: Kueue on member-b, the gang timeout on member-a.

Its own test bed: member-a has two 8 x A100 nodes and no gang admitter (its agent
runs with a short --gang-timeout); member-b has three 8 x A100 nodes and the real
Kueue controller (built from the Go module proxy), and its agent runs with
--kueue-queue. The federator and both agents are `federator` processes; every
check goes through kubectl. member-a's agent dials the federator through a
loopback TCP proxy (tests/reliability/fault_proxy.py) that passes everything
until a test silences it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_support import (
    JOBS_NAMESPACE,
    WORKLOADS,
    Kube,
    Testbed,
    own_bed,
    ready_members,
    service_account_kubeconfig,
    serving,
)
from support import ROOT, eventually

try:
    from tests.testbed.testbed import A100, NodeSpec, gpu_nodes
except ImportError:
    from testbed import A100, NodeSpec, gpu_nodes  # type: ignore[no-redef]
try:
    from tests.reliability.fault_proxy import Proxy
except ImportError:
    sys.path.insert(0, str(ROOT / "tests" / "reliability"))
    from fault_proxy import Proxy  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(3600)]

DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"
GANG_TIMEOUT = 5  # seconds: short, so the test is quick; the agent's default is 120
KUEUE_TIMEOUT = 30  # member-b's --kueue-admission-timeout: short, so the test is quick; the agent's default is 600
# The federator's timing, spelled out (these are its defaults): a cluster silent for LEASE is Partitioned (and an
# agent that heard nothing for LEASE drops its stream), Lost after LOST_AFTER more; an agent's fence limit is
# LOST_AFTER less the order bound (a quarter of it, at most 10 s), so 110 s here.
LEASE = 10.0
LOST_AFTER = 120.0
FENCE_LIMIT = LOST_AFTER - 10.0
QUEUE = "federated"  # the LocalQueue the member-b agent hands workloads to
MEMBERS = {"member-a": "east", "member-b": "west"}


@pytest.fixture(scope="module")
def gang_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Kube, Proxy]]:
    # member-a-a100-1 holds one pod: a limit the federator's resource model does not carry (see
    # _fill_member_b_and_starve_member_a)
    nodes = {"member-a": [NodeSpec("member-a-a100-0", A100, 8), NodeSpec("member-a-a100-1", A100, 8, pods=1)],
             "member-b": gpu_nodes("member-b-a100", A100, 3, 8)}
    workdir = tmp_path_factory.mktemp("gang-federation")
    with own_bed(tmp_path_factory.mktemp("gang-testbed"), nodes=nodes, job_pod_duration=10.0,
                 controllers={"member-b": ("kueue",)}) as tb:
        _kueue_queues(tb, gpus=16)
        with serving(tb, workdir, "--lease-seconds", str(LEASE), "--lost-after", str(LOST_AFTER)) as fed:
            proxy = Proxy(fed.grpc_target).start()
            try:
                for member, region in MEMBERS.items():
                    kubeconfig = service_account_kubeconfig(tb, member, "federator-agent",
                                                            workdir / f"{member}.kubeconfig")
                    extra = ["--gang-timeout", str(GANG_TIMEOUT)] if member == "member-a" else \
                        ["--kueue-queue", QUEUE, "--kueue-admission-timeout", str(KUEUE_TIMEOUT)]
                    server = proxy.address if member == "member-a" else fed.grpc_target
                    args = ["agent", "--cluster", member, "--region", region, "--server", server,
                            "--kubeconfig", str(kubeconfig), "--namespace", WORKLOADS, *extra, "--insecure"]
                    fed.agents[member] = fed.spawn(f"agent-{member}", args)
                k = Kube(tb, fed, workdir)
                eventually(lambda: ready_members(k) == sorted(MEMBERS), timeout=60,
                           what=lambda: f"both member clusters Ready\n{k.logs()}")
                yield k, proxy
            finally:
                proxy.stop()


@pytest.fixture(scope="module")
def kube(gang_bed: tuple[Kube, Proxy]) -> Kube:
    return gang_bed[0]


@pytest.fixture(scope="module")
def member_a_link(gang_bed: tuple[Kube, Proxy]) -> Proxy:
    """The proxy between member-a's agent and the federator."""
    return gang_bed[1]


def _kueue_queues(tb: Testbed, *, gpus: int, cohort: str = "lenders") -> None:
    """member-b's Kueue queues. In a cohort with no borrowing limit, as by default here, the agent cannot see what
    the queue could borrow, so it does not hold the quota against its report (kueue_quota.py), and a gang the
    queue cannot admit may be sent to member-b: what the tests of Kueue's holding need. (Nothing lends in that
    cohort, so Kueue admits no more than the quota.)"""
    tb.apply("member-b", [
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "a100"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "federated"},
         "spec": {"namespaceSelector": {}, **({"cohortName": cohort} if cohort else {}), "resourceGroups": [{
             "coveredResources": ["cpu", "nvidia.com/gpu"],
             "flavors": [{"name": "a100", "resources": [{"name": "cpu", "nominalQuota": 1000},
                                                        {"name": "nvidia.com/gpu", "nominalQuota": gpus}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
         "metadata": {"name": QUEUE, "namespace": WORKLOADS}, "spec": {"clusterQueue": "federated"}},
    ])


def _fj(name: str, replicas: int, *, delay: str = "2s") -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "training", "replicas": replicas, "acceleratorModels": ["A100"],
                 "resources": {"nvidia.com/gpu": 8, "cpu": "1"},
                 "template": {"metadata": {"annotations": {DELAY: delay}}}},
    })


def _cli(k: Kube, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "federator", *args, *k.fed.client_args()], capture_output=True,
                          text=True, timeout=60, check=True)
    return proc.stdout


def _status(k: Kube, name: str) -> dict[str, Any]:
    return dict(((k.fj(name) or {}).get("status")) or {})


def _member_objects(k: Kube, member: str, placement_id: str) -> list[str]:
    out = []
    for kind in ("jobs", "pods"):
        for item in k.json(member, "get", kind, "-n", WORKLOADS)["items"]:
            if (item["metadata"].get("annotations") or {}).get("federator.io/placement-id") == placement_id:
                out.append(f"{kind}/{item['metadata']['name']}")
    return out


def test_members_say_what_admits_their_gangs(kube: Kube) -> None:
    def offers() -> dict[str, str]:
        return {i["metadata"]["name"]: (i.get("status") or {}).get("gangAdmission", "")
                for i in kube.json("host", "get", "memberclusters")["items"]}

    eventually(lambda: offers() == {"member-a": "none", "member-b": "kueue"}, timeout=30,
               what=lambda: f"gangAdmission in MemberCluster status ({offers()})")
    wide = kube.kubectl("host", "get", "mc", "-o", "wide").stdout
    assert "GANG-ADMISSION" in wide.splitlines()[0], wide
    out = _cli(kube, "get", "clusters", "-o", "wide")
    assert "GANG ADMISSION" in out and "kueue" in out, out


def test_kueue_holds_a_gang_over_quota_with_its_reason_then_admits_it_whole(kube: Kube) -> None:
    # 3 x 8 A100 fit only member-b (3 nodes), whose ClusterQueue allows 16 GPUs.
    kube.kubectl("host", "apply", "-f", "-", input=_fj("kueue-gang", 3))
    try:
        def waiting() -> str:
            status = _status(kube, "kueue-gang")
            message = str(status.get("message", ""))
            return message if status.get("phase") == "Placed" and "nvidia.com/gpu" in message else ""

        message = eventually(waiting, timeout=90, what=lambda: f"Kueue's reason on kueue-gang\n{kube.logs()}")
        assert message.startswith("waiting for Kueue admission on member-b: "), message
        assert "quota" in message, message  # Kueue's own words: insufficient quota for nvidia.com/gpu
        assert _status(kube, "kueue-gang")["cluster"] == "member-b"
        jobs = kube.member_jobs("member-b")
        assert len(jobs) == 1
        job = jobs[0]
        assert job["spec"]["suspend"] is True and job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == QUEUE
        assert not kube.json("member-b", "get", "pods", "-n", WORKLOADS)["items"]  # no partial gang
        wide = kube.kubectl("host", "get", "fj", "kueue-gang", "-o", "wide").stdout
        assert "waiting for Kueue admission on member-b" in wide, wide
        out = _cli(kube, "get", "jobs", "-o", "wide")
        assert "waiting for Kueue admission on member-b" in out, out

        # Raise the quota: Kueue admits the whole gang, unsuspends it, and it runs to Succeeded.
        _kueue_queues(kube.tb, gpus=24)
        eventually(lambda: kube.phase("kueue-gang") == "Succeeded", timeout=120,
                   what=lambda: f"kueue-gang Succeeded after the quota was raised\n{kube.logs()}")
        workloads = kube.json("member-b", "get", "workloads.kueue.x-k8s.io", "-n", WORKLOADS)["items"]
        assert any(c["type"] == "Admitted" and c["status"] == "True"
                   for w in workloads for c in w["status"]["conditions"])
    finally:
        kube.kubectl("host", "delete", "fj", "kueue-gang", "--ignore-not-found", "--wait=false")


def test_a_gang_kueue_cannot_admit_is_moved_once_the_other_member_can_run_it(kube: Kube) -> None:
    """Found by hand on the test bed: Kueue's quota is the member's business, so the federator sent a gang to a
    member whose ClusterQueue could never admit it ("> maximum capacity"), and it waited there for ever while
    the other member sat idle. The agent then withdrew a placement Kueue held past --kueue-admission-timeout,
    which sent a job whose only member held it to the back of that queue every time. Now the agent asks the
    federator (admission_overdue): while no other member can run the gang it keeps its place in Kueue's queue,
    and once member-a has room the federator moves it there."""
    tb = kube.tb
    _fill_member_a(kube)  # member-a looks full to the federator while the gang is placed
    _kueue_queues(tb, gpus=8)  # 2 x 8 never fits member-b's ClusterQueue
    try:
        kube.kubectl("host", "apply", "-f", "-", input=_fj("kueue-stuck", 2))
        eventually(lambda: _status(kube, "kueue-stuck").get("cluster") == "member-b"
                   and "waiting for Kueue admission on member-b" in str(_status(kube, "kueue-stuck").get("message")),
                   timeout=60, what=lambda: f"kueue-stuck held by Kueue on member-b: {_status(kube, 'kueue-stuck')}")
        first = _status(kube, "kueue-stuck")["placementId"]
        eventually(lambda: "keeps its place in member-b's queue" in str(_status(kube, "kueue-stuck").get("message")),
                   timeout=3 * KUEUE_TIMEOUT, what=lambda: "kueue-stuck left in member-b's queue while member-a is "
                                                           f"full: {_status(kube, 'kueue-stuck')}")
        assert _status(kube, "kueue-stuck")["placementId"] == first  # not withdrawn: nowhere else to run
        assert _member_objects(kube, "member-b", first)
        tb.kubectl("member-a", "delete", "deployment", "a-filler", "-n", "default")  # room on member-a again
        eventually(lambda: kube.phase("kueue-stuck") == "Succeeded", timeout=180,
                   what=lambda: f"kueue-stuck Succeeded on member-a: {_status(kube, 'kueue-stuck')}\n{kube.logs()}")
        assert _status(kube, "kueue-stuck")["cluster"] == "member-a"
        events = kube.kubectl("host", "get", "events", "-n", JOBS_NAMESPACE,
                              "--field-selector", "involvedObject.name=kueue-stuck").stdout
        assert "--kueue-admission-timeout" in events and "nvidia.com/gpu" in events, events
        assert "moved: member-a can run it now" in events, events
        eventually(lambda: not _member_objects(kube, "member-b", first), timeout=60,
                   what=lambda: f"the moved placement {first} gone from member-b")
    finally:
        tb.kubectl("member-a", "delete", "deployment", "a-filler", "-n", "default", "--ignore-not-found")
        _kueue_queues(tb, gpus=24)
        kube.kubectl("host", "delete", "fj", "kueue-stuck", "--ignore-not-found", "--wait=false")


def test_a_member_reports_no_more_free_accelerators_than_its_kueue_queue_would_admit(kube: Kube) -> None:
    """The same gang, the same member-a full, but member-b's ClusterQueue in no cohort: its agent holds the 8 GPUs
    of quota left against the 24 free on its nodes, so the federator never sends the 2 x 8 gang there to wait;
    it waits Pending, saying why (the quota holds member-b's other 16), and runs on member-a once member-a has
    room."""
    tb, agent_log = kube.tb, kube.fed.agents["member-b"].log
    _fill_member_a(kube)
    _kueue_queues(tb, gpus=8, cohort="")
    try:
        eventually(lambda: _free_accelerators(kube, "member-b") == 8, timeout=60,
                   what=lambda: f"member-b reported its quota left, 8 ({_free_accelerators(kube, 'member-b')})")
        seen = len(agent_log.read_text())
        kube.kubectl("host", "apply", "-f", "-", input=_fj("kueue-quota", 2))
        # A cycle's reason, not the one a job has until its first cycle ("waiting for the next scheduling cycle")
        reason = eventually(lambda: "member-b" in (m := str((_status(kube, "kueue-quota").get("pendingReason") or {})
                                                           .get("message", ""))) and m,
                            timeout=60, what=lambda: f"kueue-quota pending, saying why: {_status(kube, 'kueue-quota')}")
        # the 16 free on member-b's nodes that its ClusterQueue holds back are named as the quota's, not missing
        assert "more free held back by the member's own queue quota" in reason, reason
        time.sleep(2 * LEASE)  # reports come and go: it stays unplaced
        status = _status(kube, "kueue-quota")
        assert status.get("phase") == "Pending" and not status.get("placementId"), status
        assert "kueue-quota" not in agent_log.read_text()[seen:]  # never launched on member-b
        tb.kubectl("member-a", "delete", "deployment", "a-filler", "-n", "default")
        eventually(lambda: kube.phase("kueue-quota") == "Succeeded", timeout=180,
                   what=lambda: f"kueue-quota Succeeded on member-a: {_status(kube, 'kueue-quota')}\n{kube.logs()}")
        assert _status(kube, "kueue-quota")["cluster"] == "member-a"
    finally:
        tb.kubectl("member-a", "delete", "deployment", "a-filler", "-n", "default", "--ignore-not-found")
        _kueue_queues(tb, gpus=24)
        kube.kubectl("host", "delete", "fj", "kueue-quota", "--ignore-not-found", "--wait=false")


def test_a_gang_not_wholly_bound_in_time_is_refused_and_placed_on_the_other_member(kube: Kube) -> None:
    tb = kube.tb
    _fill_member_b_and_starve_member_a(kube)
    # Each replica runs 4 s, less than the 5 s timeout: the first finishes and frees its node, the second
    # then binds there and runs. The Job reads as Running (1 done, 1 running), but the two never held nodes
    # together, so it is still a partial gang and must be refused (an agent that trusted the phase was not).
    kube.kubectl("host", "apply", "-f", "-", input=_fj("gang-timeout", 2, delay="4s"))
    try:
        first = eventually(lambda: _status(kube, "gang-timeout").get("cluster") == "member-a"
                           and _status(kube, "gang-timeout").get("placementId"), timeout=60,
                           what=lambda: f"gang-timeout placed on member-a\n{kube.logs()}")
        eventually(lambda: _member_objects(kube, "member-a", first), timeout=30, what="its Job on member-a")
        tb.kubectl("member-b", "delete", "deployment", "filler", "-n", "default")  # room on member-b again

        second = eventually(lambda: _status(kube, "gang-timeout").get("cluster") == "member-b"
                            and _status(kube, "gang-timeout").get("placementId"), timeout=90,
                            what=lambda: f"gang-timeout re-placed on member-b: {_status(kube, 'gang-timeout')}\n"
                                         f"{tb.kubectl('member-a', 'get', 'pods,jobs', '-A', '-o', 'wide').stdout}\n"
                                         f"{kube.logs()}")
        assert second != first
        # The refusal, in the agent's words, reached the federator's events / log.
        assert "gang timeout on member-a" in kube.fed.agents["member-a"].log.read_text()
        eventually(lambda: not _member_objects(kube, "member-a", first), timeout=60,
                   what=lambda: "no object of the first attempt left on member-a "
                                f"({_member_objects(kube, 'member-a', first)})")
        eventually(lambda: kube.phase("gang-timeout") == "Succeeded", timeout=120,
                   what=lambda: f"gang-timeout Succeeded on member-b\n{kube.logs()}")
    finally:
        tb.kubectl("member-a", "delete", "pod", "slot-hog", "-n", "default", "--ignore-not-found", "--wait=false")
        tb.kubectl("member-b", "delete", "deployment", "filler", "-n", "default", "--ignore-not-found")
        kube.kubectl("host", "delete", "fj", "gang-timeout", "--ignore-not-found", "--wait=false")


def test_a_gang_no_two_nodes_have_the_cpu_for_is_not_sent_to_that_member(kube: Kube) -> None:
    """The agent reports every node's room (room classes): with one of member-a's two free A100 nodes out of
    CPU, the federator sees one node that holds a replica, not two, and keeps the 2 x 8 gang waiting, rather
    than send it to be bound half and refused at the gang timeout. One node's room per bucket (the roomiest)
    said two fit, and the gang went there. Once the CPU is back, it runs there."""
    tb, agent_log = kube.tb, kube.fed.agents["member-a"].log
    _fill_member_b_and_starve_member_a(kube)  # member-a-a100-1: one pod slot, taken
    tb.kubectl("member-a", "delete", "pod", "slot-hog", "-n", "default")
    tb.apply("member-a", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cpu-hog", "namespace": "default"},
        "spec": {"nodeName": "member-a-a100-0",
                 "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "64"}}}]},
    })
    eventually(lambda: (k := kube.json("host", "get", "mc", "member-a").get("status") or {}).get("cpuMilliFree")
               == k.get("cpuMilliAllocatable", 0) - 64_000, timeout=60, what="member-a reported the CPU hog")
    seen = len(agent_log.read_text())
    kube.kubectl("host", "apply", "-f", "-", input=_fj("gang-room", 2))
    try:
        eventually(lambda: (_status(kube, "gang-room").get("pendingReason") or {}).get("code"), timeout=60,
                   what=lambda: f"gang-room pending with a reason: {_status(kube, 'gang-room')}")
        time.sleep(2 * LEASE)  # reports come and go: it stays unplaced
        status = _status(kube, "gang-room")
        assert status.get("phase") == "Pending" and not status.get("placementId"), status
        assert "member-a" in status["pendingReason"]["message"], status
        assert "refused" not in status["pendingReason"]["message"], status
        assert "gang-room" not in agent_log.read_text()[seen:]  # never launched there
        tb.kubectl("member-a", "delete", "pod", "cpu-hog", "-n", "default")
        eventually(lambda: kube.phase("gang-room") == "Succeeded", timeout=120,
                   what=lambda: f"gang-room Succeeded on member-a: {_status(kube, 'gang-room')}\n{kube.logs()}")
        assert _status(kube, "gang-room").get("cluster") == "member-a"
    finally:
        tb.kubectl("member-a", "delete", "pod", "cpu-hog", "-n", "default", "--ignore-not-found", "--wait=false")
        tb.kubectl("member-b", "delete", "deployment", "filler", "-n", "default", "--ignore-not-found")
        kube.kubectl("host", "delete", "fj", "gang-room", "--ignore-not-found", "--wait=false")


PAUSE = 2 * LEASE  # the agent's freeze: clearly past the lease, clearly short of the fence limit and LOST_AFTER


def test_a_gang_refused_while_its_agent_reconnects_keeps_the_job_off_that_member(
        kube: Kube, member_a_link: Proxy) -> None:
    """Found by hand: SIGSTOP member-a's agent while its gang is partial, past the lease, and SIGCONT. On resume the
    agent drops its stale stream (nothing from the federator for a lease) and its gang guard refuses the gang
    (past --gang-timeout) and deletes it. The refusal died with the old stream and the re-sync listed only the
    placements still held: the federator saw a placement lost by a restarted agent, did not mark member-a as
    refusing the job, and placed it there again to be refused again.

    The link is silenced for the freeze too, which makes that outcome certain rather than a race inside the
    resumed agent: through a live link, heartbeats the federator sent during the freeze's first lease wait in the
    agent's socket and, read before the agent looks at the time, keep the old stream (no reset at all); and a
    refusal queued before the old stream is torn down still goes out on it. Silenced, the stream is certainly
    reset and the refusal certainly lost with it; the link comes back once the gang's objects are gone, so the
    re-sync is all the federator hears of it."""
    tb, agent, link = kube.tb, kube.fed.agents["member-a"], member_a_link
    name = "gang-resync"
    tb.kubectl("member-a", "delete", "pod", "slot-hog", "-n", "default", "--ignore-not-found")  # the last test's
    _fill_member_b_and_starve_member_a(kube)
    eventually(lambda: _free_accelerators(kube, "member-a") == 16, timeout=60, what="member-a reported empty")
    launched_before = len(_launches(agent.log))
    watches: list[_JobWatch] = []
    # Each replica runs 30 s: the replica that binds holds its node all through the freeze, the other never binds.
    kube.kubectl("host", "apply", "-f", "-", input=_fj(name, 2, delay="30s"))
    try:
        # Frozen right after it launched the gang (its 5 s gang timeout counts from there, and on through the
        # freeze): the member binds one replica meanwhile and cannot bind the other.
        pid, job_id = eventually(lambda: _launches(agent.log)[launched_before:] and
                                 _launches(agent.log)[launched_before], timeout=60,
                                 what=lambda: f"{name} launched on member-a\n{kube.logs()}")
        link.silence()
        os.kill(agent.popen.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            assert f"placement {pid}: gang timeout" not in agent.log.read_text(), \
                f"refused before the freeze: frozen too late\n{kube.logs()}"
            watch = _JobWatch(kube, job_id, kube.workdir / f"watch-{name}.log")
            watches.append(watch)
            eventually(lambda: watch.clusters() == ["member-a"], timeout=30,
                       what=lambda: f"federator watch: {name} placed on member-a\n{watch.text()}")
            assert _status(kube, name).get("placementId") == pid
            eventually(lambda: _bound(kube, "member-a", pid) == [True, False], timeout=30,
                       what=lambda: f"a partial gang on member-a ({_bound(kube, 'member-a', pid)})")
            eventually(lambda: _cluster_state(kube, "member-a") == "Partitioned", timeout=30,
                       what=lambda: f"member-a Partitioned: silent for a lease ({_cluster_state(kube, 'member-a')})")
            time.sleep(max(0.0, PAUSE - (time.monotonic() - stopped_at)))  # the freeze itself, not a check
        finally:
            os.kill(agent.popen.pid, signal.SIGCONT)
        paused = time.monotonic() - stopped_at
        assert LEASE < paused < FENCE_LIMIT / 2, paused
        # Resumed, the agent gave its stream up (nothing from the federator for a lease) and refused the gang (it
        # had not before the freeze), and deleted it.
        eventually(lambda: _since_resume(agent.log, "no message from the federator for")
                   and f"placement {pid}: gang timeout on member-a" in agent.log.read_text(), timeout=30,
                   what=lambda: f"member-a's agent gave up its stream and refused the gang\n{kube.logs()}")
        eventually(lambda: not _member_objects(kube, "member-a", pid), timeout=60,
                   what=lambda: f"the gang deleted on member-a ({_member_objects(kube, 'member-a', pid)})")
        link.cut()  # the connections of the silent stretch go; new ones get through again
        link.heal()
        eventually(lambda: _since_resume(agent.log, "connected to") and _cluster_state(kube, "member-a") == "Ready",
                   timeout=60, what=lambda: f"member-a's agent back\n{kube.logs()}")

        # The federator heard the refusal: the job is back to Pending as refused there, not as merely lost. The
        # re-queue's own state (RefusedByCluster) is told once it is stored, and the cycle may have given the job
        # its next reason by then, which says the refusal in its turn ("member-a refused this job a moment ago").
        requeued = eventually(lambda: watch.after_placed("member-a"), timeout=60,
                              what=lambda: f"{name} re-queued\n{watch.text()}\n{kube.logs()}")
        assert "no longer runs" not in requeued, f"re-queued as lost, not as refused:\n{watch.text()}"
        told = (f"stopped placement {pid}: refused", "refused this job a moment ago")
        eventually(lambda: any(s[1] != "member-a" and "refused: gang timeout on member-a: " in s[2]
                               and any(t in s[2] for t in told) for s in watch.states()), timeout=60,
                   what=lambda: f"{name} re-queued as refused by member-a\n{watch.text()}")
        assert not any("no longer runs" in s[2] for s in watch.states()), watch.text()

        # ... and it stays off member-a, which has room for it again, while member-b is full.
        def held_off() -> str:
            message = str((_status(kube, name).get("pendingReason") or {}).get("message", ""))
            return message if kube.phase(name) == "Pending" and _free_accelerators(kube, "member-a") == 16 \
                and "member-a refused this job a moment ago" in message else ""

        reason = eventually(held_off, timeout=60,
                            what=lambda: f"{name} Pending, member-a avoided: {_status(kube, name)}\n{watch.text()}")
        assert "member-b has no node with 8 free" in reason, reason
        assert [p for p, j in _launches(agent.log) if j == job_id] == [pid], \
            f"placed on member-a again\n{watch.text()}\n{kube.logs()}"

        tb.kubectl("member-b", "delete", "deployment", "filler", "-n", "default")  # room on member-b again
        eventually(lambda: kube.phase(name) == "Succeeded" and _status(kube, name).get("cluster") == "member-b",
                   timeout=120, what=lambda: f"{name} Succeeded on member-b: {_status(kube, name)}\n"
                                             f"{watch.text()}\n{kube.logs()}")
        # Its whole story: once on member-a, refused there for the gang timeout, then member-b.
        assert watch.clusters() == ["member-a", "-", "member-b"], watch.text()
        assert [p for p, j in _launches(agent.log) if j == job_id] == [pid], watch.text()
        assert kube.fed.server is not None
        assert f"no longer holds placement {pid}" not in kube.fed.server.log.read_text()
    finally:
        link.heal()
        for w in watches:
            w.stop()
        tb.kubectl("member-a", "delete", "pod", "slot-hog", "-n", "default", "--ignore-not-found", "--wait=false")
        tb.kubectl("member-b", "delete", "deployment", "filler", "-n", "default", "--ignore-not-found")
        kube.kubectl("host", "delete", "fj", name, "--ignore-not-found", "--wait=false")


class _JobWatch:
    """`federator watch JOB`: every state of the job the federator announces, one line each (id, phase,
    clusters, pending reason), from now on."""

    def __init__(self, k: Kube, job_id: str, path: Path) -> None:
        self.job_id, self.path = job_id, path
        with path.open("w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "federator", "watch", job_id, *k.fed.client_args()],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)

    def text(self) -> str:
        return f"--- federator watch\n{self.path.read_text()}"

    def states(self) -> list[list[str]]:
        """[phase, clusters, reason] per line."""
        return [(line.split(" ", 3)[1:] + [""])[:3] for line in self.path.read_text().splitlines()
                if line.startswith(f"{self.job_id} ")]

    def after_placed(self, cluster: str) -> str:
        """The first state after the job was placed on `cluster` in which it is not ("" until there is one)."""
        states = self.states()
        first = next((i for i, s in enumerate(states) if s[1] == cluster), None)
        if first is None:
            return ""
        return next((" ".join(s) for s in states[first:] if s[1] != cluster), "")

    def clusters(self) -> list[str]:
        """Where the job was, in order, repeats collapsed ("-": nowhere)."""
        out: list[str] = []
        for _, where, _ in self.states():
            if not out or out[-1] != where:
                out.append(where)
        return out

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _launches(log: Path) -> list[tuple[str, str]]:
    """(placement id, job id) of every launch in an agent's log, in order."""
    return re.findall(r"launched placement (\S+) \(job (\S+), generation", log.read_text())


_RESUMED = "resumed after a pause"


def _since_resume(log: Path, text: str) -> bool:
    """Whether `text` is in the agent's log after its last resume from a pause."""
    lines = log.read_text().splitlines()
    resumed = max((i for i, line in enumerate(lines) if _RESUMED in line), default=None)
    return resumed is not None and any(text in line for line in lines[resumed:])


def _bound(k: Kube, member: str, placement_id: str) -> list[bool]:
    """For each pod of the placement, whether it is bound to a node (bound first)."""
    pods = [p for p in k.json(member, "get", "pods", "-n", WORKLOADS)["items"]
            if (p["metadata"].get("annotations") or {}).get("federator.io/placement-id") == placement_id]
    return sorted((bool(p["spec"].get("nodeName")) for p in pods), reverse=True)


def _cluster_state(k: Kube, member: str) -> str:
    return str((k.json("host", "get", "mc", member).get("status") or {}).get("state", ""))


def _fill_member_b_and_starve_member_a(k: Kube) -> None:
    """member-b looks full to the federator (its pods hold every A100), so a gang goes to member-a, where a pod
    that holds no GPU takes the one pod slot of a node: the federator's model (free GPUs, CPU and memory per
    node) says 2 x 8 fit, but the member's scheduler can bind only one replica ("Too many pods").

    It was a pod that took the node's CPU until the agents reported every node's room (room classes): the
    federator then saw that only one node had the CPU, and rightly sent the gang nowhere."""
    tb = k.tb
    tb.apply("member-b", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "filler", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "filler"}}, "template": {
            "metadata": {"labels": {"app": "filler"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}},
    })
    tb.apply("member-a", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "slot-hog", "namespace": "default"},
        "spec": {"nodeName": "member-a-a100-1",
                 "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]},
    })
    eventually(lambda: _free_accelerators(k, "member-b") == 0, timeout=60, what="member-b reported full")


def _fill_member_a(k: Kube) -> None:
    """member-a's two A100 nodes held by pods the federator did not place, until `a-filler` is deleted."""
    k.tb.apply("member-a", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a-filler", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "a-filler"}}, "template": {
            "metadata": {"labels": {"app": "a-filler"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}},
    })
    eventually(lambda: _free_accelerators(k, "member-a") == 0, timeout=60, what="member-a reported full")


def _free_accelerators(k: Kube, member: str) -> int:
    status = k.json("host", "get", "mc", member).get("status") or {}
    return int(status.get("acceleratorsFree", -1))
