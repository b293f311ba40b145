"""`federator submit -f` with files it cannot take, and `federator get jobs -o json`: what a user sees."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import serving
from test_jobfile import GOOD  # type: ignore[import-not-found]

from federator.api import convert
from federator.cli import main
from federator.cli.job_document import job_document
from federator.cli.job_files import read_specs
from federator.cli.request_ids import request_id_for
from federator.jobfile_loading import parse_job_documents
from federator.model import Job, JobId, JobPhase, Placement, PlacementId
from federator.server.federator import Federator
from federator.store import SqliteJobStore


@pytest.mark.parametrize(("content", "problem"), [
    (b"\xff\xfe\x00a: 1\n", "file: is not UTF-8 text (byte 0xff at offset 0)"),
    (b"[" * 5000 + b"]" * 5000, "nested more than 64 levels deep"),
    ("a:\n" + "".join(" " * i + "b:\n" for i in range(1, 3000)), "nested more than 64 levels deep"),
    ("spec: {x: [" * 80 + "1" + "]}" * 80, "nested more than 64 levels deep"),
    ("a: [1\n", "not valid YAML"),
], ids=["not-utf8", "deep-flow", "deep-block", "deep-spec", "bad-yaml"])
def test_a_file_the_cli_cannot_read_as_a_job_gets_one_line_naming_the_file_and_the_problem(
        tmp_path: Path, content: bytes | str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    # A real process: nothing is caught for it, so a traceback would show.
    out = subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(path), "--insecure",
                          "--server", "127.0.0.1:1"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: ") and problem in line, line


def test_an_echoed_value_is_cut_so_an_error_stays_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(json.dumps(GOOD))
    doc["metadata"]["name"] = "X" * 20_000
    doc["spec"]["acceleratorModels"] = ["y" * 20_000]
    path = tmp_path / "huge.yaml"
    path.write_text(json.dumps(doc))
    assert main(["submit", "-f", str(path), "--insecure", "--server", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "metadata.name" in err and "spec.acceleratorModels[0]" in err and len(err) < 2_000, len(err)
    assert "(20000 characters)" in err  # the name's own length, not its repr's


def test_two_jobs_of_one_name_in_one_submit_are_refused_before_any_is_sent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def doc(name: str, namespace: str = "default") -> str:
        d = json.loads(json.dumps(GOOD))
        d["metadata"].update(name=name, namespace=namespace)
        return json.dumps(d)
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(doc("llm") + "\n---\n" + doc("llm", "team-b"))  # one name in two namespaces: two jobs
    assert [(s.namespace, s.name) for s in read_specs([one])] == [("default", "llm"), ("team-b", "llm")]
    two.write_text(doc("other") + "\n---\n" + doc("llm", "team-b"))
    # Nothing listens on port 1: a submit that got as far as dialling would fail with exit 1, not 2.
    assert main(["submit", "-f", str(one), "-f", str(two), "--insecure", "--server", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {two} document 2: metadata.name: team-b/llm is also the name of {one} document 2; "
                   "a namespace holds one job of a name\n"
                   "error: nothing submitted: every file is checked before any job is sent\n")


def test_get_jobs_json_shows_the_job_level_generation() -> None:
    job = Job(job_id=JobId("j-1"), spec=convert.spec_from_pb(convert.spec_to_pb(_spec())), submitted_at=1.0,
              phase=JobPhase.RUNNING, generation=2,
              placements=[Placement(PlacementId("j-1.g2.a"), JobId("j-1"), "a", "r", 1, "H100", 2)])
    shown = job_document(convert.job_from_pb(convert.job_to_pb(job)))["status"]  # what `get jobs -o json` prints
    assert shown["placementGeneration"] == 2 == shown["placements"][0]["generation"]


def _spec():  # type: ignore[no-untyped-def]
    from federator.jobfile import parse_job

    return parse_job(GOOD)


def test_the_request_id_derived_from_a_file_did_not_change_with_the_models_fields_name() -> None:
    """A submit killed before an upgrade of the CLI and retried after it must be the same request, or the job
    runs twice: the id derived from a file that names its models is the one the CLI derived when the field
    was called gpuModels, whichever name the file uses."""
    text = ("apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {name: pretrain}\nspec:\n"
            "  kind: training\n  replicas: 2\n  resources: {nvidia.com/gpu: 8, cpu: \"32\", memory: 256Gi}\n"
            "  gpuModels: [H100, A100]\n")
    before_rename = "cli-f0d27e31f0b663c9c3f6f31a25aa2584d13a1f59"  # what the CLI of b3be40e derived for `text`
    assert request_id_for(parse_job_documents(text)[0]) == before_rename
    assert request_id_for(parse_job_documents(text.replace("gpuModels", "acceleratorModels"))[0]) == before_rename
    assert request_id_for(parse_job_documents(text.replace("H100, A100", "H100"))[0]) != before_rename


def _stream(*names: str) -> str:
    docs = []
    for name in names:
        d = json.loads(json.dumps(GOOD))
        d["metadata"]["name"] = name
        docs.append(json.dumps(d))
    return "\n---\n".join(docs)


def test_jobs_piped_to_submit_f_dash_are_submitted(tmp_path: Path) -> None:
    """`sed ... | federator submit -f -`, kubectl's habit (outside QA HPC H9: refused as a file named `-`)."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    with serving(fed) as address:
        out = subprocess.run([sys.executable, "-m", "federator", "submit", "-f", "-", "--insecure", "--server",
                              address], input=_stream("gen-0", "gen-1"), capture_output=True, text=True, timeout=60,
                             check=False)
    assert out.returncode == 0, out.stderr
    assert sorted(j.spec.name for j in fed.jobs.values()) == ["gen-0", "gen-1"]
    assert [line.split(" (")[1] for line in out.stdout.splitlines()] == ["default/gen-0, queue research)",
                                                                         "default/gen-1, queue research)"]


def test_a_bad_document_on_stdin_is_named_by_its_index(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    first, second = _stream("gen-0"), _stream("gen-1").replace('"replicas": 4', '"replicas": 0')
    text = f"{first}\n---\n{second}"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["submit", "-f", "-", "--insecure", "--server", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: <stdin>: document 2 (gen-1): spec.replicas: must come to "), err


def test_stdin_is_named_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "-f", "-", "-f", "-", "--insecure", "--server", "127.0.0.1:1"]) == 2
    assert capsys.readouterr().err.startswith("error: <stdin>: file: standard input may be named once")
