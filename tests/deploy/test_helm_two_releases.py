"""Two releases of a chart in one cluster: their cluster-scoped objects never share a name.

Release names are unique per namespace only, so `fed` in team-a and `fed` in team-b (two
federations on one host, or two federations' agents on one member) must still own distinct
ClusterRoles and ClusterRoleBindings: helm refuses to install an object another release owns,
and a shared one would be deleted with the first release uninstalled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_support import AGENT, AGENT_CI_VALUES, FEDERATOR, Helm

CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "Namespace"}


@pytest.fixture(scope="module")
def h(helm: Path) -> Helm:
    return Helm(helm)


def _render(h: Helm, chart: Path, release: str, namespace: str, *args: str | Path) -> list[dict[str, Any]]:
    proc = h.run("template", release, chart, "--namespace", namespace, *args)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _cluster_scoped(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in CLUSTER_SCOPED}


def _elsewhere(docs: list[dict[str, Any]], namespace: str) -> set[tuple[str, str, str]]:
    """Namespaced objects a release puts outside its own namespace."""
    return {(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs
            if d["kind"] not in CLUSTER_SCOPED and d["metadata"].get("namespace", namespace) != namespace}


@pytest.mark.parametrize(("chart", "first", "second"), [
    # the user ClusterRoles (federator-user, federator-viewer) have fixed names users bind to: one release has them
    pytest.param(FEDERATOR, ["--set", "grafanaDashboard.namespace=monitoring"],
                 ["--set", "rbac.userRoles=false", "--set", "grafanaDashboard.namespace=monitoring"], id="federator"),
    # each federation's agent runs its placements in a namespace of its own
    pytest.param(AGENT, ["-f", AGENT_CI_VALUES], ["-f", AGENT_CI_VALUES, "--set", "workloadNamespace=team-b-workloads"],
                 id="federator-agent"),
])
@pytest.mark.parametrize("release_b", ["fed", "fed2"], ids=["same-release-name", "other-release-name"])
def test_two_releases_share_no_cluster_scoped_object(h: Helm, chart: Path, first: list[str], second: list[str],
                                                      release_b: str) -> None:
    a = _render(h, chart, "fed", "team-a", *first)
    b = _render(h, chart, release_b, "team-b", *second)
    assert {k for k, _ in _cluster_scoped(a)} >= {"ClusterRole", "ClusterRoleBinding"}
    assert not _cluster_scoped(a) & _cluster_scoped(b)
    assert not _elsewhere(a, "team-a") & _elsewhere(b, "team-b")  # e.g. both dashboards in Grafana's namespace
    for docs, namespace in ((a, "team-a"), (b, "team-b")):
        bindings = [d for d in docs if d["kind"] == "ClusterRoleBinding"]  # the agent's: two, with namespacePerQueue
        roles = {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"}
        assert {b["roleRef"]["name"] for b in bindings} <= roles  # each release binds its own roles
        assert {s["namespace"] for b in bindings for s in b["subjects"]} == {namespace}
