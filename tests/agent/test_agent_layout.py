"""The agent stays split by role: each module small, saying why it is apart, and the parts below the composition.

agent/agent.py grew to 802 lines mixing the stream, the reconnects, the orders and the final-phase bookkeeping;
each now lives in a module of its own (agent/agent.py's docstring lists them), and `Agent` only builds them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import federator.agent

PACKAGE = Path(federator.agent.__file__).parent
MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
MAX_LINES = 450


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_each_agent_module_is_small_and_says_why_it_exists(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_LINES, f"{path.name} grew: put the new concern in a module of its own"
    assert ast.get_docstring(ast.parse(source)), f"{path.name} has no docstring saying why it is apart"


@pytest.mark.parametrize("path", [p for p in MODULES if p.name not in ("agent.py", "runner.py")],
                         ids=lambda p: p.name)
def test_no_part_of_the_agent_imports_the_composition(path: Path) -> None:
    """agent.py builds the parts; a part that imported it would be a circle (runner.py runs an `Agent`)."""
    imported = {node.module for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and node.module}
    assert "federator.agent.agent" not in imported, path.name
