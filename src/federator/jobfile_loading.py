"""Job files and YAML streams read into specs: a file, a folder of them, standard input, several documents.

Why a module of its own: `jobfile.py` reads one FederatedJob document into a validated JobSpec; what comes before
it, finding the files a user named, reading one within its bounds (its size, its nesting, its values: the "billion
laughs"), and saying which document of a stream is at fault, is a concern of its own that grew jobfile.py past
600 lines (review of stop 60). Moved verbatim; every problem is still a JobFileError naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from federator.jobfile import FieldProblem, JobFileError, held_of, parse_job
from federator.jobsource import STDIN, TooLarge, is_stdin, read_job_text, source_name
from federator.model import JobSpec
from federator.yamltext import YamlShapeError, load_documents, yaml_problem

MAX_DEPTH = 64
"""Nesting a job document may have at most: a pod template is a few levels deep, thousands are an attack."""

MAX_VALUES = 100_000
"""Values (mappings, lists, scalars) one job document may come to, each alias (`*name`) counted as the values it
repeats. Aliases are allowed (a file may share one `resources:` block among containers), but a few hundred bytes
of aliases that alias aliases come to billions of values ("billion laughs"); a real job is a few hundred."""

MAX_FILE_BYTES = 16 << 20
"""The largest job file read (16 MiB): a job is a few KiB and one request at most 1 MiB (the federator's default
--max-message-bytes), so this is a file of thousands of jobs; past it the file is refused before it is parsed."""

JOB_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def job_paths(paths: Iterable[Path]) -> list[Path]:
    """The job files named: a file as it is (`-`: standard input, once), a folder as its .yaml, .yml and .json
    files in name order (not its subfolders). A folder that holds none is a JobFileError: a user who names one
    meant to run something."""
    out: list[Path] = []
    for p in paths:
        if is_stdin(p) and STDIN in out:
            raise JobFileError([FieldProblem("file", "standard input may be named once")], source_name(p))
        if is_stdin(p) or not p.is_dir():
            out.append(p)
            continue
        found = sorted(q for q in p.iterdir() if q.suffix.lower() in JOB_FILE_SUFFIXES and not q.is_dir())
        if not found:
            raise JobFileError([FieldProblem("folder", "holds no job files (.yaml, .yml, .json)")], str(p))
        out.extend(found)
    return out


def load_job_files(path: Path, *, held: list[bool] | None = None) -> list[JobSpec]:
    """Every FederatedJob in a file (several YAML documents may share one file).

    Whatever the file holds, the outcome is specs or one JobFileError naming
    the file and the problem (never a traceback): unreadable, not UTF-8 text,
    not YAML, nested too deep, or not a FederatedJob. `held`, if given, gets
    each job's spec.held (`held_of`), in order: the file is read once (it may be
    standard input).
    """
    name = source_name(path)  # `-` is standard input, said `<stdin>` (jobsource.py)
    try:
        text = read_job_text(path, limit=MAX_FILE_BYTES)
    except TooLarge as exc:
        bound = f"{MAX_FILE_BYTES} ({MAX_FILE_BYTES >> 20} MiB)"
        size = f"is {exc.size} bytes," if exc.exact else "is"
        raise JobFileError([FieldProblem("file", f"{size} more than {bound}, the most a job file may be; "
                                                 "split it")], name) from exc
    except OSError as exc:
        raise JobFileError([FieldProblem("file", exc.strerror or str(exc))], name) from exc
    except ValueError as exc:  # not UTF-8 text: read_job_text says which byte
        raise JobFileError([FieldProblem("file", str(exc))], name) from exc
    return parse_job_documents(text, source=name, held=held)


def parse_job_documents(text: str, *, source: str = "", held: list[bool] | None = None) -> list[JobSpec]:
    try:
        docs = load_documents(text, max_depth=MAX_DEPTH, max_values=MAX_VALUES)
    except YamlShapeError as exc:
        where = "document" if exc.document == 1 and not _more_documents(text) else f"document {exc.document}"
        raise JobFileError([FieldProblem(where, exc.problem)], source) from exc
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own bound, far past ours
            raise JobFileError([FieldProblem("document", f"nested more than {MAX_DEPTH} levels deep")], source) from exc
        raise JobFileError([FieldProblem("document", yaml_problem(exc))], source) from exc
    except RecursionError as exc:  # the pure-Python YAML composer recurses once per level
        raise JobFileError([FieldProblem("document", f"nested more than {MAX_DEPTH} levels deep")], source) from exc
    if not docs:
        raise JobFileError([FieldProblem("document", "is empty")], source)
    if held is not None:
        held.extend(held_of(doc) for doc in docs)
    if len(docs) == 1:
        return [parse_job(docs[0], source=source)]
    # Several documents: every bad one is named, by its place in the file and its name, in one error, so
    # that a file of twenty jobs is not fixed one refusal at a time (nothing is submitted until all parse).
    specs: list[JobSpec] = []
    problems: list[FieldProblem] = []
    for i, doc in enumerate(docs):
        try:
            specs.append(parse_job(doc, source=source))
        except JobFileError as exc:
            where = f"document {i + 1}{_named(doc)}"
            problems.extend(FieldProblem(f"{where}: {p.field}", p.problem) for p in exc.problems)
    if problems:
        raise JobFileError(problems, source)
    return specs


def _named(doc: object) -> str:
    """' (NAME)' for a document whose metadata.name is a short plain string, else ''."""
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(name, str) and 0 < len(name) <= 63 and name.isprintable():
        return f" ({name})"
    return ""


def _more_documents(text: str) -> bool:
    """Whether a YAML stream may hold several documents (a line starting `---` after its first line)."""
    return "\n---" in text


__all__ = ["JOB_FILE_SUFFIXES", "MAX_DEPTH", "MAX_FILE_BYTES", "MAX_VALUES", "job_paths", "load_job_files",
           "parse_job_documents"]
