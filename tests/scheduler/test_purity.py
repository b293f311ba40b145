"""The scheduler stays pure: the same code runs in the server, the simulator and the benchmarks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import federator.scheduler

PACKAGE = Path(federator.scheduler.__file__).parent
FORBIDDEN = ("grpc", "kubernetes", "prometheus_client", "sqlite3", "asyncio", "socket", "subprocess",
             "federator.api", "federator.server", "federator.store", "federator.metrics", "federator.agent",
             "federator.backends")


def _modules() -> list[Path]:
    return sorted(PACKAGE.glob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_no_io_imports(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
            if node.module == "time":
                assert all(a.name != "time" for a in node.names), f"{path.name}: from time import time"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert (node.value.id, node.attr) != ("time", "time"), f"{path.name}: reads the wall clock"
    bad = [m for m in imported if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_modules_say_why_they_exist_and_stay_small(path: Path) -> None:
    text = path.read_text()
    assert ast.get_docstring(ast.parse(text)), f"{path.name} has no module docstring"
    assert len(text.splitlines()) < 600, f"{path.name} is over 600 lines"
