"""The job files a submit sends, every one read and checked before any job is sent: a bad file, or two jobs
that surely share a name, sends none (half a submission, for a mistake visible in the files, is worse)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from federator.jobfile import FieldProblem, JobFileError
from federator.jobfile_loading import job_paths, load_job_files
from federator.jobsource import source_name
from federator.model import DEPENDS_ON_ANNOTATION, Condition, JobSpec
from federator.model.dependency import checked
from federator.security.namespaces import DEFAULT_NAMESPACE


def read_specs(paths: list[Path]) -> list[JobSpec]:
    """Parse every file first: nothing is submitted if any file is bad, or if two jobs share a name."""
    return [spec for spec, _ in read_sources(paths)]


def read_sources(paths: list[Path], *, held: list[bool] | None = None) -> list[tuple[JobSpec, str]]:
    """Every job of the files named, with where it came from (`FILE`, or `FILE: document N (NAME)` for a file
    of several), all parsed before any is submitted: nothing is sent if any file is bad, or if two jobs surely
    share a name.

    A namespace holds one job of a name, so the second of two would be refused by the federator after the
    first was submitted: half a submission, for a mistake visible in the files. Surely: two jobs that name no
    namespace (or `default`) but different queues are not twins, since under a multi-tenant policy each goes in
    its queue's namespace (security/namespaces.py) and both are accepted; under a single-tenant one the
    federator refuses the second itself (outside QA: the CLI refused a file the federator would take whole)."""
    out: list[tuple[JobSpec, str]] = []
    first: dict[tuple[str, ...], str] = {}
    twins: list[FieldProblem] = []
    for path in job_paths(paths):
        found = load_job_files(path, held=held)  # each job's spec.held, if asked (cli/hold.py)
        for i, spec in enumerate(found):
            name = source_name(path)  # `-`: `<stdin>`
            where = name if len(found) == 1 else f"{name} document {i + 1}"
            # where the job lands: its namespace, or, naming none, its queue's (whichever that is)
            key = (spec.namespace, spec.name) if spec.namespace != DEFAULT_NAMESPACE else \
                (spec.namespace, spec.name, spec.queue)
            if key in first:
                same = "" if spec.namespace != DEFAULT_NAMESPACE else f" in queue {spec.queue}"
                twins.append(FieldProblem(f"{where}: metadata.name", f"{spec.namespace}/{spec.name}{same} is also "
                                          f"the name of {first[key]}; a namespace holds one job of a name"))
            else:
                first[key] = where
            out.append((spec, name if len(found) == 1 else f"{name}: document {i + 1} ({spec.name})"))
    if twins:
        raise JobFileError(twins)
    return out


__all__ = ["read_sources", "read_specs"]


def with_dependency(sources: list[tuple[JobSpec, str]], after: list[str],
                    after_any: list[str], after_not_ok: list[str] | None = None,
                    after_start: list[str] | None = None) -> list[tuple[JobSpec, str]]:
    """Each job waiting on the jobs `submit --after JOB` (afterok), `--after-any JOB` (afterany),
    `--after-not-ok JOB` (afternotok) or `--after-start JOB` (afterstart) names, kept as spec.dependsOn is
    (model/dependency.py); JobFileError for two
    of the flags, a bad list, or a job file's own spec.dependsOn beside them (which was meant is not guessed)."""
    given = [(flag, condition, keys) for flag, condition, keys in (
        ("--after", Condition.AFTER_OK, after), ("--after-any", Condition.AFTER_ANY, after_any),
        ("--after-not-ok", Condition.AFTER_NOT_OK, after_not_ok or []),
        ("--after-start", Condition.AFTER_START, after_start or [])) if keys]
    if not given:
        return sources
    if len(given) > 1:
        raise JobFileError([FieldProblem(given[0][0], f"{given[0][0]} and {given[1][0]} may not be given together: "
                                                      "a job waits under one condition")])
    flag, condition, keys = given[0]
    dependency = checked(condition, tuple(keys))
    if isinstance(dependency, str):
        raise JobFileError([FieldProblem(flag, dependency.removeprefix("jobs: "))])
    out = []
    for spec, where in sources:
        if spec.depends_on is not None:
            raise JobFileError([FieldProblem("spec.dependsOn", f"{flag} was given too; give one or the other")],
                               where)
        kept = tuple(sorted({**dict(spec.annotations), DEPENDS_ON_ANNOTATION: dependency.annotation()}.items()))
        out.append((replace(spec, annotations=kept), where))
    return out
