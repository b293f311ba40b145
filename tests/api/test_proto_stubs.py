"""The committed stubs must be what `make proto` generates from proto/ today."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_stubs_are_current(tmp_path: Path) -> None:
    pin = re.search(r'"grpcio-tools==([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pin, "pyproject.toml: grpcio-tools must be pinned exactly (its version is written into every stub)"
    have = importlib.metadata.version("grpcio-tools")
    assert have == pin.group(1), f"grpcio-tools {have} installed, pyproject.toml pins {pin.group(1)}: " \
        "pip install -e '.[test]'"
    spec = importlib.util.spec_from_file_location("genproto", ROOT / "scripts" / "genproto.py")
    assert spec and spec.loader
    genproto = importlib.util.module_from_spec(spec)
    sys.modules["genproto"] = genproto
    spec.loader.exec_module(genproto)
    written = genproto.generate(tmp_path)
    committed = ROOT / "src" / "federator" / "api"
    stale = [p.relative_to(tmp_path) for p in written
             if p.read_text() != (committed / p.relative_to(tmp_path)).read_text()]
    assert not stale, f"stale generated stubs, run `make proto`: {stale}"
    assert len(written) >= 7
