"""The Kubernetes-mode modules import each other one way only: host -> options, cli/agent -> kube/main."""

from __future__ import annotations

import ast
from pathlib import Path

KUBE = Path(__file__).resolve().parents[3] / "src" / "federator" / "backends" / "kube"


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_options_does_not_import_host() -> None:
    assert "federator.backends.kube.host" not in _imports(KUBE / "options.py")


def test_host_imports_options() -> None:
    assert "federator.backends.kube.options" in _imports(KUBE / "host.py")


def test_the_kube_agent_entry_does_not_import_the_cli_that_calls_it() -> None:
    """cli/agent.py -> backends/kube/main.py, never back (the second of the two circles)."""
    cli_agent = KUBE.parents[1] / "cli" / "agent.py"
    assert "federator.backends.kube.main" in _imports(cli_agent)
    assert not {m for m in _imports(KUBE / "main.py") if m.startswith("federator.cli")}
