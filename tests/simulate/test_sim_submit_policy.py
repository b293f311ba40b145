"""`federator sim --policy` refuses what Submit refuses under the same policy (outside QA, new user F6): it placed
examples/jobs/llm-pretrain.yaml (priority 100 in a queue allowed 0), which the server refused at submit, and so
over-reported what the policy admits. The sim asks the server's own check (`SchedulerConfig.priority_problem`)
and reports each refusal in Submit's words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federator.cli import main
from federator.jobfile_loading import load_job_files
from federator.scheduler import Scheduler, load_policy
from federator.server.federator import Federator
from federator.server.intake import SubmitError
from federator.simulate import Simulation, load_fleet_file, load_workload
from federator.store import SqliteJobStore

from support import EXAMPLES

# research inherits defaultQueue's maxPriority 0, as examples/policy.yaml's research did before F1
POLICY = "queues:\n  research: {weight: 1}\n  serving: {maxPriority: 1000}\ndefaultQueue: {maxPriority: 0}\n"


def _server_says(policy: Path, job_file: Path) -> str:
    fed = Federator(store=SqliteJobStore(policy.parent / "db"), scheduler=Scheduler(load_policy(policy)))
    (spec,) = load_job_files(job_file)
    with pytest.raises(SubmitError) as err:
        fed.submit(spec)
    return str(err.value)


def test_sim_counts_a_job_submit_refuses_as_refused_with_submits_words(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    said = _server_says(policy, EXAMPLES / "jobs" / "llm-pretrain.yaml")
    assert said.startswith("spec.priority: 100 is above the highest queue 'research' allows, 0")

    rc = main(["sim", "--fleet", str(EXAMPLES / "fleet.yaml"), "--workload", str(EXAMPLES / "jobs"),
               "--policy", str(policy), "--no-progress", "-o", "json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["jobs_refused_at_submit"] == 1
    assert out["refused_at_submit_reasons"] == {said: 1}
    assert out["jobs_total"] == 5
    assert out["jobs_placed"] + out["jobs_pending"] == 4  # the refused one is never offered, so never placed


def test_the_text_report_gives_each_refusal_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    assert main(["sim", "--fleet", str(EXAMPLES / "fleet.yaml"), "--workload", str(EXAMPLES / "jobs"),
                 "--policy", str(policy), "--no-progress"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("refused_at_submit_reasons ")]
    assert len(lines) == 1 and lines[0].split(None, 1)[1].startswith("1 x spec.priority: 100 is above")


def test_without_a_policy_nothing_is_refused_at_submit() -> None:
    sim = Simulation(load_fleet_file(EXAMPLES / "fleet.yaml"), load_workload(EXAMPLES / "jobs"))
    report = sim.run("fill")
    assert (report.jobs_refused_at_submit, dict(report.refused_at_submit_reasons)) == (0, {})
    assert report.jobs_total == 5
