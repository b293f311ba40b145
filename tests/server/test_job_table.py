"""The job table's indexes (server/job_table.py) agree with the jobs they index, whatever order jobs come and
go in: submission order, each owner's and recorded group's jobs, each name's jobs."""

from __future__ import annotations

import random

import pytest

from federator.model import Job, JobId, JobKind, JobSpec, Resources
from federator.security.authz import owner_of, recorded_owner
from federator.server.job_table import JobTable, View


def job(i: int, *, at: float, owner: str, groups: str = "", name: str = "", queue: str = "q") -> Job:
    spec = JobSpec(name=name or f"n{i % 13}", kind=JobKind.TRAINING, replicas=1, queue=queue,
                   resources=Resources(cpu_milli=1000))
    return Job(job_id=JobId(f"j{i}"), spec=recorded_owner(spec, owner, groups), submitted_at=at)


def order(jobs: list[Job]) -> list[str]:
    return [j.job_id for j in sorted(jobs, key=lambda j: (j.submitted_at, j.job_id))]


def test_every_index_agrees_with_the_jobs_after_random_arrivals_replacements_and_removals() -> None:
    rng = random.Random(7)
    table = JobTable()
    live: dict[str, Job] = {}
    owners = ["", "ann", "bo", "cy"]
    for _ in range(3_000):
        i = rng.randrange(400)
        if rng.random() < 0.3 and live:
            gone = rng.choice(sorted(live))
            if rng.random() < 0.5:
                assert table.pop(JobId(gone)) is live.pop(gone)
            else:
                del table[JobId(gone)]
                del live[gone]
        else:  # new, or the same id again (Kubernetes mode replaces a job's object): the old entry leaves
            j = job(i, at=float(rng.randrange(50)), owner=rng.choice(owners), groups=rng.choice(["", "g1", "g1,g2"]),
                    queue=rng.choice(["q", "r"]))
            table[j.job_id] = j
            live[j.job_id] = j
    assert table.pop(JobId("nope"), None) is None
    with pytest.raises(KeyError):
        table.pop(JobId("nope"))
    everything = list(live.values())
    assert [j.job_id for j in table.in_order()] == order(everything)
    assert [j.job_id for j in table.in_order(queue="r")] == order([j for j in everything if j.spec.queue == "r"])
    middle = sorted(everything, key=lambda j: (j.submitted_at, j.job_id))[len(everything) // 2]
    after = (middle.submitted_at, middle.job_id)
    assert [j.job_id for j in table.in_order(after=after)] == [
        k for k in order(everything) if (live[k].submitted_at, k) > after]
    for owners_seen, groups_seen in ((frozenset({"ann"}), frozenset()), (frozenset({"bo", "cy"}), frozenset({"g2"})),
                                     (frozenset({"zz"}), frozenset({"g1", "g2"}))):
        want = [j for j in everything if owner_of(j.spec)[0] and (
            owner_of(j.spec)[0] in owners_seen or owner_of(j.spec)[1] & groups_seen)]
        assert [j.job_id for j in table.in_order(view=View(owners_seen, groups_seen))] == order(want)
        assert [j.job_id for j in table.in_order(after=after, view=View(owners_seen, groups_seen))] == [
            k for k in order(want) if (live[k].submitted_at, k) > after]
    for name in {j.spec.name for j in everything} | {"absent"}:
        assert sorted(j.job_id for j in table.named(name)) == sorted(
            j.job_id for j in everything if j.spec.name == name)


def test_a_bulk_change_that_would_skip_the_indexes_is_refused() -> None:
    table = JobTable([job(1, at=1.0, owner="ann")])
    for change in (lambda: table.update({}), lambda: table.clear(), lambda: table.popitem(),
                   lambda: table.setdefault(JobId("x"), job(2, at=2.0, owner="ann"))):
        with pytest.raises(TypeError, match="one job at a time"):
            change()
    assert [j.job_id for j in table.in_order(view=View(frozenset({"ann"}), frozenset()))] == ["j1"]
