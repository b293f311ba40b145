"""Running the real helm binary on the charts of deploy/helm (importable as `helm_support`)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from deploy_support import CHARTS

FEDERATOR = CHARTS / "federator"
AGENT = CHARTS / "federator-agent"
AGENT_CI_VALUES = AGENT / "ci" / "test-values.yaml"
NAMESPACE = "federator-system"


@dataclass(frozen=True, slots=True)
class Helm:
    binary: Path

    def run(self, *args: str | Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.binary), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, check=False)

    def template(self, chart: Path, *args: str | Path, release: str = "fed") -> list[dict[str, Any]]:
        """Rendered manifests (CRDs included); AssertionError with helm's message if rendering fails."""
        proc = self.run("template", release, chart, "--namespace", NAMESPACE, "--include-crds", *args)
        assert proc.returncode == 0, f"helm template failed:\n{proc.stderr}"
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]

    def template_error(self, chart: Path, *args: str | Path) -> str:
        """helm's error for values that must be refused; AssertionError if they render."""
        proc = self.run("template", "fed", chart, "--namespace", NAMESPACE, *args)
        assert proc.returncode != 0, f"helm template accepted {args}"
        return proc.stderr


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for d in by_kind(docs, "Deployment") for c in d["spec"]["template"]["spec"]["containers"]]


def chart_meta(chart: Path) -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load((chart / "Chart.yaml").read_text())
    return meta


__all__ = ["AGENT", "AGENT_CI_VALUES", "FEDERATOR", "NAMESPACE", "Helm", "by_kind", "chart_meta",
           "containers", "one"]
