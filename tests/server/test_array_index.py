"""The job table's array index (server/array_index.py): a dependency key naming no job is looked up as an array,
by id and (Kubernetes mode) by its object's name, without a walk of every job; and the index follows jobs as they
are accepted, replaced and forgotten, and is rebuilt from the jobs a table starts with."""

from __future__ import annotations

from collections.abc import ValuesView

from federator.model import Job, JobId, JobKind, JobSpec, Resources
from federator.model.array import ARRAY_NAME_ANNOTATION, ArrayTask
from federator.server.dependencies import array_tasks, named_arrays, resolved, same_namespace
from federator.server.job_table import JobTable


def plain(i: int, namespace: str = "team-a") -> Job:
    spec = JobSpec(name=f"p{i}", kind=JobKind.TRAINING, replicas=1, namespace=namespace,
                   resources=Resources(cpu_milli=1000))
    return Job(job_id=JobId(f"p{i}-000000"), spec=spec, submitted_at=float(i))


def task(array_id: str, index: int, *, name: str = "", namespace: str = "team-a") -> Job:
    annotations = ArrayTask(array_id, index).annotations()
    if name:
        annotations[ARRAY_NAME_ANNOTATION] = name
    spec = JobSpec(name=f"{name or 'sweep'}-{index}", kind=JobKind.TRAINING, replicas=1, namespace=namespace,
                   resources=Resources(cpu_milli=1000), annotations=tuple(sorted(annotations.items())))
    return Job(job_id=JobId(f"{array_id}.{index}"), spec=spec, submitted_at=1000.0 + index)


class Spy(JobTable):
    """A job table that counts the jobs any walk of it reads."""

    walked = 0

    def values(self) -> ValuesView[Job]:  # type: ignore[override]
        Spy.walked += len(self)
        return super().values()


def test_an_array_key_is_found_by_id_and_by_name_without_walking_the_jobs() -> None:
    jobs = Spy([plain(i) for i in range(300)] + [task("sweep-abc123", i, name="sweep") for i in range(3)])
    Spy.walked = 0
    assert named_arrays(jobs, "team-a", "sweep") == ("sweep-abc123",)
    assert named_arrays(jobs, "team-b", "sweep") == ()
    assert named_arrays(jobs, "team-a", "typo") == ()
    assert array_tasks(jobs, "sweep-abc123") == ("sweep-abc123.0", "sweep-abc123.1", "sweep-abc123.2")
    assert array_tasks(jobs, "typo") == ()
    spec = JobSpec(name="merge", kind=JobKind.TRAINING, replicas=1, namespace="team-a",
                   resources=Resources(cpu_milli=1000), annotations=(("federator.io/depends-on", "afterok:sweep"),))
    assert resolved(jobs, spec, same_namespace(spec)).depends_on.jobs == ("sweep-abc123",)  # type: ignore[union-attr]
    assert Spy.walked == 0  # a scan read 303 jobs per lookup


def test_the_index_follows_tasks_accepted_and_forgotten_and_is_rebuilt_with_the_table() -> None:
    tasks = [task("sweep-abc123", i, name="sweep") for i in range(2)]
    table = JobTable([plain(1), tasks[0]])
    assert named_arrays(table, "team-a", "sweep") == ("sweep-abc123",)
    table[tasks[1].job_id] = tasks[1]  # accepted
    table[task("sweep-def456", 0, name="sweep").job_id] = task("sweep-def456", 0, name="sweep")  # one replacing it
    assert named_arrays(table, "team-a", "sweep") == ("sweep-abc123", "sweep-def456")
    del table[tasks[0].job_id]
    assert array_tasks(table, "sweep-abc123") == (tasks[1].job_id,)
    table.pop(tasks[1].job_id)  # its last task forgotten (retention): the name names the other one alone
    assert named_arrays(table, "team-a", "sweep") == ("sweep-def456",)
    assert array_tasks(table, "sweep-abc123") == ()
    rebuilt = JobTable(list(table.values()))  # a restart: the store's jobs
    assert named_arrays(rebuilt, "team-a", "sweep") == ("sweep-def456",)
    assert array_tasks(rebuilt, "sweep-def456") == ("sweep-def456.0",)
    assert array_tasks(table, "sweep-def456") == array_tasks(rebuilt, "sweep-def456")
