"""Two documents of one name in different queues, naming no namespace, are not twins to the CLI: under a
multi-tenant policy each goes in its own queue's namespace and the federator takes both (security/namespaces.py).
A name is unique per namespace in the federator (server/intake.py keys names by namespace and name; the store
has no other key), and a job naming no namespace lands in its queue's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from federator.cli import main
from federator.local import LocalFederation


def _doc(name: str, queue: str, namespace: str = "") -> str:
    ns = f", namespace: {namespace}" if namespace else ""
    return (f"apiVersion: federator.io/v1alpha1\nkind: FederatedJob\nmetadata: {{name: {name}{ns}}}\n"
            f"spec: {{kind: training, queue: {queue}, resources: {{cpu: '1'}}}}\n")


def test_one_name_in_one_queue_twice_is_still_refused_before_anything_is_sent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(_doc("chat", "org-a") + "---\n" + _doc("chat", "org-a"))
    # nothing listens on port 1: a submit that got as far as dialling would exit 1, not 2
    assert main(["submit", "-f", str(path), "--insecure", "--server", "127.0.0.1:1"]) == 2
    assert "default/chat in queue org-a is also the name of" in capsys.readouterr().err
    path.write_text(_doc("chat", "org-a", "shared") + "---\n" + _doc("chat", "org-b", "shared"))
    assert main(["submit", "-f", str(path), "--insecure", "--server", "127.0.0.1:1"]) == 2  # one namespace named
    assert "shared/chat is also the name of" in capsys.readouterr().err


POLICY = """
tenancy: {admins: {users: [anonymous]}}
queues:
  org-a: {access: {users: [alice]}}
  org-b: {access: {users: [bob]}}
"""


@pytest.mark.e2e
def test_one_name_in_two_queues_is_submitted_whole_into_each_queues_namespace(tmp_path: Path) -> None:
    policy, jobs = tmp_path / "policy.yaml", tmp_path / "jobs.yaml"
    policy.write_text(POLICY)
    jobs.write_text(_doc("chat", "org-a") + "---\n" + _doc("chat", "org-b"))
    fed = LocalFederation(workdir=tmp_path / "fed", tls=False, serve_args=["--policy", str(policy)])
    try:
        fed.start_server()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
        out = subprocess.run([sys.executable, "-m", "federator", "submit", "-f", str(jobs), *fed.client_args()],
                             capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        assert "(org-a/chat, queue org-a)" in out.stdout and "(org-b/chat, queue org-b)" in out.stdout
    finally:
        fed.stop()
