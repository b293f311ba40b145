"""No job waits beside room that fits it, whatever arrives while a cycle runs (a property test).

The live cycle is computed on a worker thread (scheduling.py) and parks the jobs it finds no room
for (parking.py). Jobs arriving, ending or cancelled, and reports moving a pool, may come before a
cycle or while it runs. Whatever the order, once things are quiet no job may be left parked that a
cycle over every pending job would place: that job would wait until some unrelated event, beside
idle accelerators.

Reports are an agent's: work the federator did not place takes some nodes, and the federator's own
placements that fit the rest are counted and listed (their room is not free in the report), so a job
that may only fit by preempting one of them shows no room in any report.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import replace

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from server_support import LEASE, LOST_AFTER, Clock, MemoryStore, make
from test_cycle_off_loop import A_WHILE, HeldScheduler

from federator.model import JobKind, JobPhase
from federator.scheduler import Scheduler, parse_policy

from builders import cluster, job, pool

MODELS = {"east-1": "NVIDIA-H100-80GB-HBM3", "west-1": "NVIDIA-A100-SXM4-80GB"}  # 4 nodes of 8 each
ACCEPTS = ((), ("H100",), ("A100",))
# per node, what work the federator did not place leaves free
FREE = ((8, 8, 8, 8), (8, 8, 8, 0), (8, 8, 0, 0), (8, 0, 0, 0), (4, 4, 4, 4), (8, 4, 2, 1), (2, 2, 0, 0), (0, 0, 0, 0))
POLICY = "queues: {capped: {quota: {accelerators: {H100: 16, A100: 8}}}}\npreemption: {enabled: true}\n"
EVENT = st.tuples(st.sampled_from(["submit", "finish", "cancel", "report", "drop", "rejoin", "lose", "restart"]),
                  st.integers(0, 10**6))
STEP = st.tuples(st.lists(EVENT, max_size=3), st.lists(EVENT, max_size=3))  # (before the cycle, while it runs)


@settings(max_examples=int(os.environ.get("FEDERATOR_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=1, max_size=10))
# A 4 x 8 gang parked beside two free nodes; a report frees all four.
@example([([("report", 4), ("submit", 117)], []), ([("report", 0)], [])])
# A preemptible job holds one of east's nodes; a 3 x 8 gang of higher priority parks (preempting it makes one
# node); then other work leaves two more nodes: the report shows two free, preempting makes three.
@example([([("report", 6), ("submit", 387)], []), ([("submit", 255)], []), ([("report", 2)], [])])
# One cycle places a preemptible 4 x 2 job of another queue first, on east's one free node; the half-GPU job of
# higher priority that it left no room for may preempt it from the next cycle on, so it must not park.
@example([([], [("report", 6), ("lose", 0)]), ([("submit", 307), ("submit", 150869)], [("drop", 0), ("rejoin", 0)])])
def test_once_quiet_no_parked_job_fits_where_a_cycle_over_every_job_would_place_it(
        steps: list[tuple[list[tuple[str, int]], list[tuple[str, int]]]]) -> None:
    async def scenario() -> None:
        held = HeldScheduler()
        held.inner = Scheduler(parse_policy(POLICY))
        held.config = held.inner.config
        clock = Clock()
        store = MemoryStore()
        fed = make(store, clock, scheduler=held)
        recs = {name: fed.connect(cluster=name, region=name, labels={}) for name in MODELS}
        frees = dict.fromkeys(MODELS, FREE[0])
        cpus = dict.fromkeys(MODELS, 1000)

        def report(name: str, free: tuple[int, ...], cpu: int | None = None) -> None:
            """`free`: per node, what work the federator did not place leaves free. The member counts the
            federator's placements that fit in it too (binding each replica best-fit, a fraction as a whole
            device), and lists them in the report, as an agent does: their room is not free in the report."""
            frees[name] = free
            cpus[name] = cpu or cpus[name]
            if not recs[name].connected:
                return
            nodes, counted = list(free), []
            for j in fed.jobs.values():
                for p in j.placements:
                    if p.cluster != name or not p.phase.is_active:
                        continue
                    g, left = -(-p.accelerator_milli // 1000), list(nodes)
                    for _ in range(p.replicas if g else 0):
                        fit = [i for i, f in enumerate(left) if f >= g]
                        if not fit:
                            break
                        left[min(fit, key=lambda i: left[i])] -= g
                    else:
                        nodes = left
                        counted.append(p.placement_id)
            cap = cluster(name, name, pool(MODELS[name], nodes=0, extra=Counter(nodes)), cpu=cpus[name]).capacity
            fed.report(recs[name], replace(cap, placement_ids=frozenset(counted)))

        for name in MODELS:
            report(name, FREE[0])
        submitted = 0

        def apply(event: str, x: int) -> None:
            nonlocal submitted, fed
            active = [j for j in fed.jobs.values() if j.phase.is_active]
            if event == "submit":
                gpus = (1, 2, 4, 8, 0, 0.5)[x % 6]  # 0: CPU only
                spec = job(f"j{submitted}", gpus=gpus, replicas=1 + x // 6 % 4, cpu=(1, 48)[x // 576 % 2],
                           models=ACCEPTS[x // 24 % 3] if gpus else (), queue=("capped", "open")[x // 72 % 2],
                           priority=(0, 100)[x // 144 % 2],
                           kind=(JobKind.TRAINING, JobKind.INFERENCE)[x // 1152 % 2])
                fed.submit(replace(spec, preemptible=bool(x // 288 % 2)))
                submitted += 1
            elif event == "finish" and active:
                for p in active[x % len(active)].placements:
                    if recs[p.cluster].connected:
                        fed.job_update(recs[p.cluster], p.placement_id, JobPhase.SUCCEEDED, "done")
            elif event == "cancel":
                pending = [j for j in fed.jobs.values() if not j.phase.is_terminal]
                if pending:
                    fed.cancel(pending[x % len(pending)].job_id)
            elif event == "report":  # work the federator did not place takes or leaves accelerators, or CPU
                report(list(MODELS)[x % 2], FREE[x // 2 % len(FREE)], (None, 64, 1000)[x // 14 % 3])
            elif event == "drop":  # an agent's stream breaks: its cluster is Partitioned
                fed.disconnect(recs[list(MODELS)[x % 2]])
            elif event == "rejoin":  # it comes back (a new session) and reports: Ready again
                name = list(MODELS)[x % 2]
                if not recs[name].connected:
                    recs[name] = fed.connect(cluster=name, region=name, labels={})
                    report(name, frees[name])
            elif event == "restart" and not cycling:  # a new federator from the store; the agents come back
                fed.cycles.close()
                fed = make(store, clock, scheduler=held)
                for name in MODELS:
                    recs[name] = fed.connect(cluster=name, region=name, labels={})
                    report(name, frees[name])
            elif event == "lose":  # time passes: a Partitioned cluster is Lost and its jobs are placed again
                clock.now += LOST_AFTER + LEASE + 1
                fed.check_leases()

        cycling = False  # a restart is not applied while a cycle runs (the process it ran in would be gone)

        async def cycle(during: list[tuple[str, int]]) -> None:
            nonlocal cycling
            held.started.clear()
            held.release.clear()
            running = asyncio.get_running_loop().create_task(fed.cycles.run_once_async())
            assert await asyncio.to_thread(held.started.wait, A_WHILE)
            cycling = True
            for event in during:
                apply(*event)
            cycling = False
            held.release.set()
            await running

        for before, during in steps:
            for event in before:
                apply(*event)
            await cycle(during)
        # Quiet now: cycles until one changes nothing (what came during the last cycle is tried, and a job
        # a preemption put back may itself preempt); preemption must not go round in circles.
        for _ in range(20):
            before = {j.job_id: (j.phase, j.generation) for j in fed.jobs.values()}
            await cycle([])
            if before == {j.job_id: (j.phase, j.generation) for j in fed.jobs.values()}:
                break
        else:
            raise AssertionError("20 quiet cycles and the placements still change")
        placed = {j.job_id for j in fed.jobs.values() if j.phase is not JobPhase.PENDING}
        fed.cycles.capacity_changed(everything=True)  # the oracle: every pending job tried again
        await cycle([])
        fed.cycles.close()
        late = [j.spec.name for j in fed.jobs.values() if j.phase is not JobPhase.PENDING and j.job_id not in placed]
        assert late == [], f"parked beside room that fits them: {late}"

    asyncio.run(scenario())
