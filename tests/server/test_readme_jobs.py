"""The README's job files are accepted as written, by the job file validator and by the federator's submit checks.

The README's first job had `template: {...}`, which YAML reads as a mapping with one key `...`: it was accepted
(stored as `{"...": null}`) and a user who copied it ran the placeholder container on 32 H100 (outside QA, F5).
Now such a template is refused, and every FederatedJob the README shows must pass as it stands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from server_support import Clock, MemoryStore, make

from federator.jobfile import parse_job

README = Path(__file__).resolve().parents[2] / "README.md"


def _jobs() -> list[dict[str, Any]]:
    blocks = re.findall(r"^```yaml\n(.*?)^```", README.read_text(), flags=re.DOTALL | re.MULTILINE)
    docs = [d for block in blocks for d in yaml.safe_load_all(block)]
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == "FederatedJob"]


def test_the_readme_shows_jobs_with_pod_templates() -> None:
    jobs = _jobs()
    assert jobs and any("template" in d["spec"] for d in jobs)


@pytest.mark.parametrize("doc", _jobs(), ids=lambda d: str(d["metadata"]["name"]))
def test_a_readme_job_is_accepted_without_a_template_warning(doc: dict[str, Any]) -> None:
    fed = make(MemoryStore(), Clock())
    job = fed.submit(parse_job(doc))
    assert not [w for w in fed.intake.warnings(job.spec) if w.startswith(("spec.template", "spec.workload"))]
    template = doc["spec"].get("template")
    if template is not None:  # a template the README teaches runs a container of the job's, not the placeholder
        assert template["spec"]["containers"]
