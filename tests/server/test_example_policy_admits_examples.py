"""The shipped policy admits the shipped jobs (outside QA, new user F1).

`federator serve --policy examples/policy.yaml` refused examples/jobs/llm-pretrain.yaml, examples/k8s/training.yaml
and the README's own job: they ask `priority: 100` in `research`, which had no maxPriority of its own and so got
defaultQueue's 0. Every FederatedJob of examples/jobs/ and examples/k8s/ goes through Submit's real validation
under the policy as serve loads it (the accelerator catalog checking its quotas' models)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from server_support import Clock, MemoryStore, make

from federator.catalog.model_names import quota_model_problem
from federator.jobfile import parse_job
from federator.jobfile_loading import job_paths, load_job_files
from federator.scheduler import Scheduler, load_policy
from federator.server.intake import SubmitError

from support import EXAMPLES

ROOT = EXAMPLES.parent
FILES = job_paths([EXAMPLES / "jobs", EXAMPLES / "k8s"])


def test_there_are_example_jobs_to_submit() -> None:
    assert {p.name for p in FILES} >= {"llm-pretrain.yaml", "training.yaml", "chat-inference.yaml"}


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_every_example_job_is_accepted_under_the_example_policy(path: Path) -> None:
    fed = make(MemoryStore(), Clock(), scheduler=Scheduler(load_policy(EXAMPLES / "policy.yaml",
                                                                       models=quota_model_problem)))
    for spec in load_job_files(path):
        try:
            fed.submit(spec)
        except SubmitError as err:
            pytest.fail(f"{path.relative_to(ROOT)}: refused under examples/policy.yaml: {err}")
    assert fed.jobs


def test_the_readmes_job_asks_a_priority_its_queue_allows() -> None:
    """The README's "A job" (its template is a placeholder, so only its queue and priority are checked)."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## A job\n.*?```yaml\n(.*?)```", readme, re.S)
    assert block is not None
    doc = yaml.safe_load(block.group(1))
    doc["spec"].pop("template")
    spec = parse_job(doc)
    assert (spec.queue, spec.priority) == ("research", 100)
    config = load_policy(EXAMPLES / "policy.yaml", models=quota_model_problem)
    assert config.priority_problem(spec.queue, spec.priority) is None
