"""The federator chart in mode=standalone: where its job store lives, and what its NOTES tell the operator.

Outside QA (ops, F7): standalone with the default persistence.enabled=false put
the SQLite job store on an emptyDir, so every upgrade (strategy Recreate), node
drain or pod move started the federator with no job, silently; and the install
NOTES told a standalone operator to `kubectl apply` FederatedJobs it does not
serve. Real helm renders and refuses here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helm_support import FEDERATOR, NAMESPACE, Helm, one

STANDALONE = ["--set", "mode=standalone", "--set", "replicaCount=1", "--set", "leaderElection.enabled=false"]


@pytest.fixture(scope="module")
def h(helm: Path) -> Helm:
    return Helm(helm)


def _notes(h: Helm, *args: str) -> str:
    """The NOTES `helm install` prints, rendered offline."""
    proc = h.run("install", "fed", FEDERATOR, "--namespace", NAMESPACE, "--dry-run=client", *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("NOTES:", 1)[1]


def test_standalone_without_a_volume_is_refused_naming_both_ways_out(h: Helm) -> None:
    error = h.template_error(FEDERATOR, *STANDALONE)
    assert "persistence.enabled" in error and "persistence.ephemeralOk=true" in error
    assert "emptyDir" in error and "every upgrade" in error  # says what would be lost, and when


def test_a_demo_may_say_its_jobs_may_be_lost(h: Helm) -> None:
    volumes = one(h.template(FEDERATOR, *STANDALONE, "--set", "persistence.ephemeralOk=true"),
                  "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "emptyDir": {}} in volumes


@pytest.mark.parametrize("args", [
    pytest.param(["--set", "persistence.enabled=true"], id="claim-of-the-chart"),
    pytest.param(["--set", "persistence.enabled=true", "--set", "persistence.existingClaim=fed-store"],
                 id="existing-claim"),
])
def test_standalone_with_a_volume_renders_its_claim(h: Helm, args: list[str]) -> None:
    docs = h.template(FEDERATOR, *STANDALONE, *args)
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    claim = next(v for v in volumes if v["name"] == "data")["persistentVolumeClaim"]["claimName"]
    assert claim in {"fed-federator-data", "fed-store"}


def test_kubernetes_mode_keeps_its_emptydir_default(h: Helm) -> None:
    """There the jobs are FederatedJobs; the file holds only usage records, and 2 replicas cannot share a claim."""
    volumes = one(h.template(FEDERATOR), "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "emptyDir": {}} in volumes


def test_standalone_notes_give_the_cli_not_kubectl_objects(h: Helm) -> None:
    notes = _notes(h, *STANDALONE, "--set", "persistence.enabled=true")
    assert "federator submit" in notes and "federator get clusters" in notes
    assert "federator backup --db /var/lib/federator/federator.db" in notes
    # off the store's volume (ops re-test N3: a daily copy there filled the 1 GiB claim and died with it)
    assert "--to /tmp/backup.db" in notes and "--to /var/lib/federator" not in notes
    assert "kubectl apply" not in notes and "memberclusters" not in notes
    assert "PersistentVolumeClaim fed-federator-data" in notes


def test_standalone_notes_on_an_emptydir_warn_that_jobs_go_with_the_pod(h: Helm) -> None:
    notes = _notes(h, *STANDALONE, "--set", "persistence.ephemeralOk=true", "--set", "tls.enabled=false")
    assert "emptyDir" in notes and "starts with no job" in notes
    assert "--insecure" in notes


def test_kubernetes_notes_keep_kubectl(h: Helm) -> None:
    notes = _notes(h)
    assert "kubectl apply -f job.yaml" in notes and "kubectl get memberclusters" in notes
    assert "federator backup" not in notes
