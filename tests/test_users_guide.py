"""docs/users.md teaches what is true: every FederatedJob it shows is a valid job, and every `federator ...`
command it shows uses a subcommand and flags the CLI has.

A users' guide whose example a new user copies and sees refused (a field renamed, a flag that never existed)
is worse than none (outside QA, new user F10: there was no users' guide, the fields spread over four files)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.cli import _parsed, build_parser
from federator.jobfile import JobFileError, parse_job
from federator.security.isolation import problems

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "users.md"


def _jobs() -> list[dict[str, Any]]:
    blocks = re.findall(r"^```yaml\n(.*?)^```", GUIDE.read_text(), flags=re.DOTALL | re.MULTILINE)
    docs = [d for block in blocks for d in yaml.safe_load_all(block)]
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == "FederatedJob"]


def _commands(*, inline: bool) -> list[str]:
    """The `federator ...` commands the guide shows: whole ones in ```bash blocks (comments cut), or the ones
    named inline in prose (`federator submit -f`), which may leave out a required argument; each of a chain
    (`federator wait A && federator submit -f b.yaml`) alone."""
    text = GUIDE.read_text()
    if inline:
        found = re.findall(r"`(federator [^`]*)`", text)
    else:
        found = [line.split("#", 1)[0].strip()
                 for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
                 for line in block.splitlines()]
    parts = [part.strip() for c in found for part in c.split("&&")]  # a chain: each command of it is checked
    return [c for c in parts if c.startswith("federator ")]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_guide_shows_jobs_and_commands() -> None:
    jobs = _jobs()
    assert len(jobs) >= 4
    assert any("workload" in d["spec"] for d in jobs) and any("accelerators" in d["spec"] for d in jobs)
    shown = _commands(inline=False) + _commands(inline=True)
    assert {"submit", "get", "watch", "cancel", "scale"} <= {c.split()[1] for c in shown}


@pytest.mark.parametrize("doc", _jobs(), ids=lambda d: str(d["metadata"]["name"]))
def test_a_guide_job_is_valid(doc: dict[str, Any]) -> None:
    spec = parse_job(doc)
    assert spec.name == doc["metadata"]["name"]


def test_an_invalid_job_in_the_guide_would_be_caught() -> None:
    """The check is not vacuous: a guide job with a misspelt field is refused by the same call."""
    doc = _jobs()[0]
    bad = {**doc, "spec": {**doc["spec"], "replica": 2}}
    with pytest.raises(JobFileError, match="spec.replica"):
        parse_job(bad)


@pytest.mark.parametrize("command", _commands(inline=False))
def test_a_guide_command_parses(command: str) -> None:
    args = _parsed(build_parser(), shlex.split(command)[1:])
    assert args.command == command.split()[1]


@pytest.mark.parametrize("command", _commands(inline=True))
def test_a_command_named_in_prose_has_that_subcommand_and_flags(command: str) -> None:
    words = shlex.split(command)
    sub = _subparsers().get(words[1])
    assert sub is not None, f"{command}: no subcommand {words[1]!r}"
    flags = {s for a in sub._actions for s in a.option_strings}
    assert not [w for w in words[2:] if w.startswith("-") and w.split("=", 1)[0] not in flags], command


@pytest.mark.parametrize("command", ["federator get jobs --bogus", "federator submit finetune.yaml",
                                     "federator frobnicate"])
def test_a_wrong_command_would_be_caught(command: str) -> None:
    with pytest.raises(SystemExit):
        _parsed(build_parser(), shlex.split(command)[1:])


def test_a_wrong_command_in_prose_would_be_caught() -> None:
    flags = {s for a in _subparsers()["get"]._actions for s in a.option_strings}
    assert "-o" in flags and "--wide" not in flags and "bogus" not in _subparsers()


def test_every_annotation_the_simulated_clusters_read_is_in_the_guides_table() -> None:
    """QA new56 N3: a user of the demo learns each `federator.io/sim-*` annotation where the others are listed
    (sim-output-every was missing: without it a simulated job's `logs -f` shows nothing new for its whole run)."""
    from federator.backends.sim import runtime

    read = {v for k, v in vars(runtime).items() if k.endswith("_ANNOTATION") and isinstance(v, str)}
    assert "federator.io/sim-output-every" in read
    table = GUIDE.read_text().split("Annotations a user may set on the job", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"`(federator\.io/[a-z-]+)`", table))
    assert read - listed == set()


def test_the_multikueue_example_runs_as_shown_and_with_its_kueue_labels_back_is_told_where_they_go() -> None:
    """Outside QA, teams from MultiKueue, M1: the section "Coming from MultiKueue ..." tells a team to move its
    JobSet's Kueue labels into spec.queue and spec.priority; the federator's refusal of a JobSet that keeps them
    must say the same, and the guide's JobSet without them must pass the check the federator makes at submit."""
    doc = next(d for d in _jobs() if d["metadata"]["name"] == "mk-pretrain")
    workload = doc["spec"]["workload"]
    assert problems(workload, "spec.workload") == []
    labelled = {**workload, "metadata": {**workload["metadata"], "labels": {
        "kueue.x-k8s.io/queue-name": "team-a-lq", "kueue.x-k8s.io/priority-class": "high"}}}
    said = dict(problems(labelled, "spec.workload"))
    assert "leave it out: the queue a job counts against is spec.queue" in \
        said["spec.workload.metadata.labels[kueue.x-k8s.io/queue-name]"]
    assert "spec.priority" in said["spec.workload.metadata.labels[kueue.x-k8s.io/priority-class]"]
