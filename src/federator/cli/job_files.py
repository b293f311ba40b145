"""The job files a submit sends, every one read and checked before any job is sent: a bad file, or two jobs
that surely share a name, sends none (half a submission, for a mistake visible in the files, is worse)."""

from __future__ import annotations

from pathlib import Path

from federator.jobfile import FieldProblem, JobFileError, job_paths, load_job_files
from federator.jobsource import source_name
from federator.model import JobSpec
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
