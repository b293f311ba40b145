"""A spec from the API read by the one validator of job files, CRDs and the API (`jobfile.parse_job`).

Why a module of its own: a Submit, a scale and a kindless request each need a spec the API built checked as the
job file it stands for, its JSON texts (pod templates, the workload) read strictly first (jsontext.load_json), and
every problem said at once. That is a reading of the spec, not intake's bookkeeping (server/intake.py: indexes,
back-pressure, reservations), and was moved verbatim out of intake.py when it passed 600 lines (review of stop 60).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from federator.jobfile import FieldProblem, JobFileError, parse_job
from federator.jobfile_loading import MAX_DEPTH
from federator.jobfile_writing import spec_to_document
from federator.jsontext import JsonTextError, load_json
from federator.model import JobSpec


def checked(spec: JobSpec) -> JobSpec:
    """The spec as the job file validator reads it (one validator for files, CRDs and the API); JobFileError
    lists every problem, those of its JSON texts (`json_problems`) with the rest."""
    problems = json_problems(spec)
    if not problems:
        return parse_job(spec_to_document(spec))
    bare = replace(spec, pod_template_json="", workload_json="",
                   accelerators=tuple(replace(a, pod_template_json="") for a in spec.accelerators))
    if spec.workload_json:  # what the workload would have brought is unknown: the rest is read as it stands
        bare = replace(bare, workload_json="{}")
    try:
        parse_job(spec_to_document(bare))
    except JobFileError as exc:
        problems += [p for p in exc.problems if not p.field.startswith("spec.workload")]
    raise JobFileError(problems)


def json_problems(spec: JobSpec) -> list[FieldProblem]:
    """What is wrong with the JSON texts of a spec from the API (jsontext.load_json): a pod template must
    be an object; a workload is read by parse_job once it is JSON."""
    problems: list[FieldProblem] = []
    texts = [("spec.template", spec.pod_template_json, True), ("spec.workload", spec.workload_json, False)]
    texts += [(f"spec.accelerators[{i}].template", a.pod_template_json, True) for i, a in enumerate(spec.accelerators)]
    for field, text, must_be_object in texts:
        if not text:
            continue
        try:
            value = load_json(text, max_depth=MAX_DEPTH)
        except JsonTextError as exc:
            problems.append(FieldProblem(field, str(exc)))
            continue
        if must_be_object and not isinstance(value, dict):
            problems.append(FieldProblem(field, f"must be a JSON object, got {type(value).__name__}"))
    return problems


def kindless_problems(specs: Iterable[JobSpec]) -> list[FieldProblem]:
    """The problems every one of `specs` has: given the same spec under each kind, what is wrong with a
    submission whatever its kind. A client that sent no kind learns these with the kind's own problem,
    not one mistake per round trip; a problem only one kind has (spec.regions.minRegions on training
    work) is left out, since the client may have meant the other."""
    common: list[FieldProblem] | None = None
    for spec in specs:
        try:
            checked(spec)
            found: list[FieldProblem] = []
        except JobFileError as exc:
            found = list(exc.problems)
        common = found if common is None else [p for p in common if p in found]
    return common or []


__all__ = ["checked", "json_problems", "kindless_problems"]
