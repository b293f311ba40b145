"""`federator serve --kubeconfig` SIGKILLed after a serving job moved: the new process keeps the job's quiet time from
when it last moved, which its FederatedJob status kept (backends/kube/move_times.py), not from its own start.

Before, Kubernetes mode kept these times in memory only: the first turn after a restart or a change of leader could
move a job that had just moved again at once, within policy.rebalance.quietSeconds.

Real processes on the test bed, as a user runs them: member-b (west, 1 x 8 H100) and member-a (east, 1 x 8 H100),
an agent each. `fill` (inference, 2 x 4 H100, preferred west) takes west whole; `chat` (inference, 2 x 4 H100,
preferred west) is placed in east. `fill` scaled to 1 leaves room for one replica in west: `chat` moves one replica
there (the move completes: one in west, one in east) and its status keeps when. `fill` is deleted, so west has
room for chat's other replica, a move that would make chat strictly nearer, which the process does not start within
chat's quiet time. It is SIGKILLed (no flush on the way out, no release of the Lease) and started again: the new
process does not start it either within the quiet time, and does once the quiet time is over (the move was there
to make all along).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from federator.backends.kube.resources import parse_timestamp

from kube_support import JOBS_NAMESPACE, LEASE_TIMES, WORKLOADS, Kube, federation, own_bed
from support import eventually, scraped

try:
    from tests.testbed.testbed import H100, gpu_nodes
except ImportError:  # kube_support put tests/testbed on sys.path
    from testbed import H100, gpu_nodes  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

QUIET = 120  # long enough for the restart and the turns checked within it on a loaded machine (checked below)
POLICY = f"rebalance: {{maxMovesPerMinute: 6, quietSeconds: {QUIET}}}\n"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    work = tmp_path_factory.mktemp("rebalance-restart")
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    (work / "federation").mkdir()
    nodes = {"member-a": gpu_nodes("member-a-h100", H100, 1, 8), "member-b": gpu_nodes("member-b-h100", H100, 1, 8)}
    with own_bed(work / "bed", members=("member-a", "member-b"), nodes=nodes) as bed, \
            federation(bed, work / "federation", "--policy", str(policy), *LEASE_TIMES) as k:
        yield k


def _job(name: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": JOBS_NAMESPACE},
        "spec": {"kind": "inference", "replicas": 2, "regions": {"preferred": ["west"]},
                 "resources": {"nvidia.com/gpu": 4, "cpu": "1"}, "acceleratorModels": ["H100"]}})


def _where(kube: Kube, name: str) -> dict[str, int]:
    """Replicas by member of the job's live placements, as its status says."""
    out: dict[str, int] = {}
    for p in ((kube.fj(name) or {}).get("status") or {}).get("placements") or []:
        if p.get("phase") in ("Placed", "Starting", "Running"):
            out[p["cluster"]] = out.get(p["cluster"], 0) + int(p["replicas"])
    return out


def _kept(kube: Kube) -> Any:
    return ((kube.fj("chat") or {}).get("status") or {}).get("rebalance")


def _started(kube: Kube) -> float:
    return scraped(kube.fed.metrics_url, "federator_rebalance_moves_total", outcome="started") or 0.0


def _pods(kube: Kube, member: str) -> int:
    return len(kube.json(member, "get", "pods", "-n", WORKLOADS)["items"])


def _cycles(kube: Kube) -> float:
    return scraped(kube.fed.metrics_url, "federator_scheduling_cycle_duration_seconds_count") or 0.0


def test_a_job_moved_before_a_sigkill_is_not_moved_again_within_its_quiet_time(kube: Kube) -> None:
    eventually(lambda: scraped(kube.fed.metrics_url, "federator_clusters_connected") == 2, timeout=120,
               what=lambda: f"both members connected\n{kube.logs()}")
    kube.kubectl("host", "apply", "-f", "-", input=_job("fill"))
    eventually(lambda: _where(kube, "fill") == {"member-b": 2} and kube.phase("fill") == "Running", timeout=120,
               what=lambda: f"fill Running in west ({_where(kube, 'fill')})\n{kube.logs()}")
    kube.kubectl("host", "apply", "-f", "-", input=_job("chat"))
    eventually(lambda: _where(kube, "chat") == {"member-a": 2} and kube.phase("chat") == "Running", timeout=120,
               what=lambda: f"chat Running in east ({_where(kube, 'chat')})\n{kube.logs()}")

    before = _started(kube)  # fill placed before west's first report moved there: not chat's
    kube.kubectl("host", "scale", "fj", "fill", "--replicas", "1")  # room for one replica in west
    eventually(lambda: _where(kube, "chat") == {"member-a": 1, "member-b": 1}, timeout=120,
               what=lambda: f"one of chat's replicas moved to west ({_where(kube, 'chat')})\n{kube.logs()}")
    assert _started(kube) == before + 1
    kept = eventually(lambda: _kept(kube), timeout=60,
                      what=lambda: f"chat's last move kept in its status\n{kube.logs()}")
    assert set(kept) == {"lastMovedAt"}

    kube.kubectl("host", "delete", "fj", "fill", "--wait=true", "--timeout=120s")  # west has room for chat's other
    eventually(lambda: _pods(kube, "member-b") == 1, timeout=120,
               what=lambda: f"fill's pod gone from member-b\n{kube.logs()}")
    begun = _cycles(kube)
    eventually(lambda: _cycles(kube) >= begun + 10, timeout=60, what="ten cycles with room in west")
    assert _started(kube) == before + 1  # within its quiet time, which this process remembers
    # A move's time is written at its start and again at its end, a moment later: what the new process must read
    # back is the status as it stands when this one dies (CI caught the start's time read above, the end's after).
    kept = _kept(kube)
    assert set(kept) == {"lastMovedAt"}

    kube.fed.server.stop(signal.SIGKILL)  # type: ignore[union-attr]  # no flush, no release of the Lease
    kube.fed.start_server(timeout=120)
    # The new process's first turns, once both members have reported, see room in west: a job it found no room for
    # is asked again only a minute later (RETRY_SECONDS), so the room is there before the restart.
    eventually(lambda: kube.phase("chat") == "Running" and _cycles(kube) >= 50, timeout=120,
               what=lambda: f"fifty cycles of the new process\n{kube.logs()}")
    # before: the new process had forgotten chat's last move and moved its east replica to west at once
    assert _started(kube) == 0, kube.logs()
    assert _where(kube, "chat") == {"member-a": 1, "member-b": 1}
    assert _kept(kube) == kept  # the new process keeps the time as it was
    assert time.time() < parse_timestamp(kept["lastMovedAt"]) + QUIET, "checked past the quiet time: raise QUIET"
    # and the job was movable all along: once its quiet time is over, it moves as any job would
    eventually(lambda: _where(kube, "chat") == {"member-b": 2}, timeout=QUIET + 60,
               what=lambda: f"chat moved whole to west once its quiet time was over\n{kube.logs()}")
    assert _started(kube) == 1
