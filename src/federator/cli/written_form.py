"""A federator's refusal of a job said in the fields its file wrote, not the ones the CLI derived.

The one-count form of another vendor's resource (`resources: {mthreads.com/vgpu: 8}`) reaches the federator as
an alternative of that vendor (jobfile.py: the wire has no resource form for it), so a federator whose catalog
lacks the vendor refused `spec.accelerators[0].vendor`, a field the file never had (outside QA re-test, vendors2
R7). The CLI still has the file: it says the refusal of the resource the user wrote. Only the message changes;
the federator, which checks every job with its own catalog, stays the authority.

Likewise its models, said as the file wrote them (written_models.py, which the FederatedJob controller shares).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from federator.jobfile_loading import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, job_paths
from federator.jobsource import read_job_text
from federator.written_models import models_as_written, one_count_resource
from federator.yamltext import load_documents

# The federator's refusal of an alternative's vendor (jobfile_accelerators.parse_alternatives, run again on the wire).
_UNKNOWN_VENDOR = re.compile(r"^spec\.accelerators\[\d+\]\.vendor: unknown vendor '(?P<vendor>[^']*)'"
                             r"(?: \(known: (?P<known>[^)]*)\))?")


def written_resources(paths: list[Path]) -> list[str]:
    """Per job of `paths`, in submit's order (cli/job_files.py, read_sources), the accelerator resource its file asks
    for in the one-count form (`spec.resources`, without `spec.accelerators`), else "". The files were read
    without error a moment ago; one that cannot be read again now yields nothing, and the refusal is said as
    the federator sent it."""
    out: list[str] = []
    try:
        for path in job_paths(paths):
            text = read_job_text(path, limit=MAX_FILE_BYTES)  # stdin: the text read a moment ago, kept
            for doc in load_documents(text, max_depth=MAX_DEPTH, max_values=MAX_VALUES):
                out.append(one_count_resource(doc.get("spec") if isinstance(doc, Mapping) else None))
    except Exception:  # a second read is advice only: whatever goes wrong, the refusal is said as it was sent
        return []
    return out


def as_written(detail: str, resource: str, *, own_catalog: bool) -> str:
    """The federator's refusal `detail` of a job whose file asked for `resource` in the one-count form: an
    unknown vendor of its alternative said of that resource, an alternative's model as the acceleratorModels entry
    it was made of; any other refusal as it is."""
    if not resource:
        return detail
    detail = models_as_written(detail, {"resources": {resource: 1}})
    found = _UNKNOWN_VENDOR.match(detail)
    if found is None:
        return detail
    vendor, known = found["vendor"], found["known"]
    lacks = f"its catalog lacks vendor {vendor!r}" + (f" (it knows {known})" if known else "")
    advice = ("your --accelerator-catalog file gives it that vendor: is the file the federator's operator's?"
              if own_catalog else "ask the federator's operator which resources it knows")
    return f"spec.resources.{resource}: is not a resource this federator knows: {lacks}; {advice}" + \
        detail[found.end():]
