"""`federator get job NAME -o yaml|json` prints the job file that was submitted, and its status beside it.

Outside QA: it printed the store's row (`accelerator_milli: 8000`, `memory_bytes: 68719476736`, `submitted_at:
1796477750.01`), which no job file has, while the runbooks say it "shows the request". Each job of the users'
guide is submitted to a real federator over loopback gRPC, read back with the CLI, and its document parsed by the
job file parser `federator submit` uses: the same request."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_support import serving

from federator.cli import main
from federator.jobfile import parse_job
from federator.jobfile_loading import parse_job_documents
from federator.server.federator import Federator
from federator.store import SqliteJobStore

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "users.md"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _guide_jobs() -> list[dict[str, Any]]:
    """The FederatedJobs docs/users.md shows (tests/test_users_guide.py checks each is valid)."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", GUIDE.read_text(), flags=re.DOTALL | re.MULTILINE)
    docs = [d for block in blocks for d in yaml.safe_load_all(block)]
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == "FederatedJob"]


@pytest.mark.parametrize("doc", _guide_jobs(), ids=lambda d: str(d["metadata"]["name"]))
def test_get_job_yaml_is_the_submitted_job_file(doc: dict[str, Any], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    asked = parse_job(doc)
    with serving(Federator(store=SqliteJobStore(Path(":memory:")))) as address:
        server = ["--server", address, "--insecure"]
        assert main(["submit", "-f", str(path), *server]) == 0
        capsys.readouterr()
        assert main(["get", "job", asked.name, "-o", "yaml", *server]) == 0
        shown = capsys.readouterr().out
        assert main(["get", "job", asked.name, "-o", "json", *server]) == 0
        as_json = json.loads(capsys.readouterr().out)
    got = yaml.safe_load(shown)
    assert got == as_json
    # What `federator submit -f` reads from the printed text is the request, annotations the federator set
    # (the request id, the owner) left out: resubmitted with an edit, it is a new request, not "unchanged".
    (again,) = parse_job_documents(shown)
    assert again == asked
    assert got["spec"] == doc["spec"] | {k: v for k, v in got["spec"].items() if k not in doc["spec"]}
    assert not re.search(r"\b(accelerator_milli|memory_bytes|cpu_milli|submitted_at|pod_template_json)\b", shown)
    status = got["status"]
    assert status["phase"] == "Pending" and status["jobId"] and status["owner"]["user"] == "anonymous"
    assert RFC3339_UTC.match(status["submittedAt"]), status["submittedAt"]
    assert status["pendingReason"]["code"] and status["placements"] == []


def test_get_jobs_yaml_is_a_stream_submit_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = _guide_jobs()
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump_all(jobs, sort_keys=False))
    with serving(Federator(store=SqliteJobStore(Path(":memory:")))) as address:
        server = ["--server", address, "--insecure"]
        assert main(["submit", "-f", str(path), *server]) == 0
        capsys.readouterr()
        assert main(["get", "jobs", "-o", "yaml", *server]) == 0
        shown = capsys.readouterr().out
        assert main(["get", "jobs", "-o", "json", *server]) == 0
        listed = json.loads(capsys.readouterr().out)
    by_name = {s.name: s for s in parse_job_documents(shown)}
    assert by_name == {s.name: s for s in (parse_job(d) for d in jobs)}
    assert sorted(d["metadata"]["name"] for d in listed) == sorted(by_name)
