"""A CPU-only job parked because no node had both its CPU and its memory comes back when a report's node room
holds it, even where the cluster's sums and per-node maxima did not move (model/node_room.py)."""

from __future__ import annotations

from server_support import Clock, MemoryStore, make

from federator.model import ClusterCapacity, JobPhase, ReasonCode

from builders import job

GiB = 2**30


def _report(*nodes: tuple[int, int]) -> ClusterCapacity:
    cpu, mem = sum(c for c, _ in nodes), sum(m for _, m in nodes)
    return ClusterCapacity(cpu_milli_allocatable=cpu, cpu_milli_free=cpu, memory_bytes_allocatable=mem,
                           memory_bytes_free=mem, node_cpu_milli_free_max=max(c for c, _ in nodes),
                           node_memory_bytes_free_max=max(m for _, m in nodes),
                           node_room=tuple(sorted((c, m, 1) for c, m in nodes)))


def test_a_job_parked_for_want_of_one_node_with_both_comes_back_when_a_node_has_them() -> None:
    fed = make(MemoryStore(), Clock())
    rec = fed.connect(cluster="east-1", region="r", labels={})
    fed.report(rec, _report((6_000, 8 * GiB), (2_000, 64 * GiB)))  # 6 CPUs on one node, 64 GiB on the other
    j = fed.submit(job("j", cpu=6, memory_gib=16))
    fed.schedule_once()
    got = fed.jobs[j.job_id]
    assert got.phase is JobPhase.PENDING and got.pending_reason is not None
    assert got.pending_reason.code is ReasonCode.INSUFFICIENT_MEMORY, got.pending_reason
    assert j.job_id in fed.cycles.parked
    fed.report(rec, _report((6_000, 8 * GiB), (2_000, 64 * GiB)))  # the same: still parked
    assert j.job_id in fed.cycles.parked
    # the same sums and maxima, but the nodes traded their memory: one now has both
    fed.report(rec, _report((6_000, 64 * GiB), (2_000, 8 * GiB)))
    assert j.job_id not in fed.cycles.parked
    fed.schedule_once()
    assert fed.jobs[j.job_id].phase is JobPhase.PLACED
