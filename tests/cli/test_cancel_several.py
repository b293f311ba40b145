"""`federator cancel A B C`: several jobs named, each cancelled in turn, each outcome said (outside QA ML E8: it was
argparse's "unrecognized arguments", one job per call, where `kubectl delete` takes several).

Against a real `federator serve` on loopback (its own process, its own store): a mix of a job cancelled now, one
that had ended (said, not a failure), one not found (said, the exit status 3, the others still cancelled), an
array's id (every task), `--array` as `get jobs --array` takes it; then the federator gone: the run stops at the
first job, naming those not tried (exit 4).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import serving

from federator.cli import _parsed, build_parser, main
from federator.cli.exit_codes import Exit
from federator.jobfile import parse_job
from federator.local import LocalFederation
from federator.model import JobPhase
from federator.server.federator import Federator
from federator.store import SqliteJobStore

from builders import cluster, pool


def _doc(name: str) -> str:
    return (f"apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {{name: {name}}}\n"
            "spec: {kind: training, resources: {cpu: '1'}}\n")


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[LocalFederation]:
    fed = LocalFederation(workdir=tmp_path / "fed", tls=False)
    try:
        fed.start_server()
        yield fed
    finally:
        fed.stop()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def _phases(fed: LocalFederation, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert main(["get", "jobs", "-o", "json", *fed.client_args()]) == 0
    return {d["metadata"]["name"]: d["status"]["phase"] for d in json.loads(capsys.readouterr().out)}


@pytest.mark.e2e
def test_cancel_takes_several_jobs_and_says_each(federation: LocalFederation, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    fed, flags = federation, federation.client_args()
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text("---\n".join(_doc(n) for n in ("prep", "train", "eval", "done")))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(_doc("sweep"))
    assert _cli(capsys, "submit", "-f", str(jobs), *flags)[0] == 0
    code, out, _ = _cli(capsys, "submit", "-f", str(sweep), "--array", "0-2", *flags)
    assert code == 0
    array_id = out[0].split()[1]  # "array sweep-3f9a1c submitted: ..."
    assert _cli(capsys, "cancel", "done", *flags)[0] == 0  # ended before the command below

    # names before and after the flags alike (argparse took only those before a flag)
    code, out, err = _cli(capsys, "cancel", "prep", "done", "nosuch", *flags, "train", array_id)
    assert code == Exit.NOT_FOUND  # the one failure's status; the others cancelled all the same
    assert [line.split()[0] for line in out] == ["job", "job", "job", "array"]
    assert out[0].startswith("job prep-") and out[0].endswith(" Cancelled")
    assert out[1].startswith("job done-") and out[1].endswith(" Cancelled, already ended: nothing to cancel")
    assert out[2].startswith("job train-") and out[2].endswith(" Cancelled")
    assert out[3].startswith(f"array {array_id}: cancelled 3 of 3 tasks")
    assert len(err) == 1 and err[0].startswith("error: nosuch: ") and err[0].endswith("(NOT_FOUND)")
    assert _phases(fed, capsys) == {"prep": "Cancelled", "train": "Cancelled", "eval": "Pending",
                                    "done": "Cancelled", "sweep-0": "Cancelled", "sweep-1": "Cancelled",
                                    "sweep-2": "Cancelled"}

    code, out, err = _cli(capsys, "cancel", "prep", "train", *flags)  # again: every job had ended, so 0
    assert code == 0 and all(line.endswith("already ended: nothing to cancel") for line in out) and err == []

    code, _, err = _cli(capsys, "cancel", "eval", "--name-prefix", "e", *flags)  # two ways of choosing: refused
    assert code == Exit.USAGE
    assert err == ["federator cancel: --name-prefix select among the jobs of --queue or --all-queues, not among "
                   "jobs named (eval): give the jobs, or the selection with --queue or --all-queues, not both"]
    code, _, err = _cli(capsys, "cancel", "eval", "prep", "--all-queues", "--yes", *flags)
    assert code == Exit.USAGE and "jobs named (eval, prep) and --all-queues are two ways of choosing" in err[0]
    assert _phases(fed, capsys)["eval"] == "Pending"  # nothing was sent

    for argv in (["--array", array_id], [array_id]):  # as get/watch --array take it; every task ended now
        code, out, err = _cli(capsys, "cancel", *argv, *flags)
        assert (code, out, err) == (0, [f"array {array_id}: all 3 of its tasks had ended: nothing to cancel"], [])
    code, out, err = _cli(capsys, "cancel", "--array", "nosuch-abcdef", *flags)
    assert code == Exit.NOT_FOUND and out == [] and err[0].startswith("error: no task of array 'nosuch-abcdef'")
    code, out, err = _cli(capsys, "cancel", "--array", "eval", *flags)  # a job, not an array (new60b)
    assert code == Exit.NOT_FOUND and out == [] and len(err) == 1
    assert re.fullmatch(r"error: 'eval' is a job \(eval-[0-9a-f]{6}, Pending\), not an array: cancel it without "
                        r"--array \(federator cancel eval\)", err[0]), err
    code, out, err = _cli(capsys, "cancel", "--array", "sweep-1", *flags)  # a task: its array named too
    assert re.fullmatch(f"error: 'sweep-1' is a job \\(sweep-1-[0-9a-f]{{6}}, a task of array {array_id}, "
                        "Cancelled\\), not an array: cancel it without --array \\(federator cancel sweep-1\\), or "
                        f"every task of its array with --array {array_id}", err[0]), err
    for argv, said in ((["eval", "--array", array_id], f"--array {array_id} and jobs named (eval) are two ways"),
                       (["--array", array_id, "--all-queues"], f"--array {array_id} and --all-queues are two ways"),
                       (["--array", array_id, "--owner", "x"], "--owner select with --queue or --all-queues, not "
                                                               "with --array")):
        code, _, err = _cli(capsys, "cancel", *argv, *flags)
        assert code == Exit.USAGE and said in err[0], err

    fed.stop()  # the federator gone: the first job's failure stops the run; the rest are named, not tried
    code, out, err = _cli(capsys, "cancel", "eval", "prep", "train", *flags)
    assert code == Exit.UNAVAILABLE and out == []
    assert err[0].startswith("error: eval: ") and "(UNAVAILABLE)" in err[0]
    assert err[1].startswith("note: nothing answered at ")  # what an unanswered dial may mean (cli/no_leader.py)
    assert err[2] == ("federator cancel: stopped at eval; not tried: prep, train; run the same command again (a job "
                      "it cancelled is then said as already ended)")


def test_a_job_that_succeeded_is_said_ended_and_the_first_failure_sets_the_status(
        capsys: pytest.CaptureFixture[str]) -> None:
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    rec = fed.connect(cluster="east-1", region="east", labels={})
    fed.report(rec, cluster("east-1", "east", pool("H100", nodes=1)).capacity)
    spec = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
            "spec": {"kind": "training", "resources": {"cpu": "1"}}}
    done, queued = (fed.submit(parse_job({**spec, "metadata": {"name": n}})) for n in ("done", "queued"))
    fed.schedule_once()
    (placed,) = done.placements
    fed.job_update(rec, placed.placement_id, JobPhase.SUCCEEDED, "exited 0")
    assert fed.jobs[done.job_id].phase is JobPhase.SUCCEEDED
    with serving(fed) as address:
        code = main(["cancel", "nosuch", "done", "queued", "other/nosuch", "--server", address, "--insecure"])
    out, err = capsys.readouterr()
    assert code == Exit.NOT_FOUND
    assert out.splitlines() == [f"job {done.job_id} Succeeded, already ended: nothing to cancel",
                                f"job {queued.job_id} Cancelled"]
    assert [line.split(":")[0] for line in err.splitlines()] == ["error", "error"]
    assert fed.jobs[done.job_id].phase is JobPhase.SUCCEEDED  # not turned into Cancelled


@pytest.mark.parametrize(("argv", "jobs"), [
    (["cancel", "a", "--insecure", "b", "--server", "h:1", "c"], ["a", "b", "c"]),
    (["hold", "a", "--server", "h:1", "b"], ["a", "b"]),
], ids=["cancel", "hold"])
def test_jobs_around_the_flags_are_all_taken(argv: list[str], jobs: list[str]) -> None:
    assert _parsed(build_parser(), argv).jobs == jobs


@pytest.mark.parametrize("argv", [["cancel", ""], ["cancel", "a", " "]], ids=["empty", "blank-among-others"])
def test_an_empty_job_name_is_a_usage_error_naming_the_argument(argv: list[str],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """new60b N6: it reached the federator, whose answer named the proto field (`job_id: must not be empty`)."""
    code, out, err = _cli(capsys, *argv, "--server", "127.0.0.1:1", "--insecure")
    assert code == 2 and not out
    assert err == ["federator cancel: a job to cancel is named by its id, namespace/name or name, not an empty "
                   "string"], err
