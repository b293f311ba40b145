"""Build hook: with FEDERATOR_COMPILE=1, compile the pure placement core with mypyc.

Everything else about the package is in pyproject.toml. The core (the modules listed under
[tool.federator] compiled) is plain, fully typed Python with no I/O; compiled, it places about
twice as many jobs per CPU second with the same decisions (docs/benchmarks.md, Throughput). It is
opt-in because it needs a C compiler at install time: the Dockerfile sets it, `make compiled`
builds it for the tests and benchmarks, and an editable (developer) install stays interpreted so
that an edit to a .py file always takes effect.

    FEDERATOR_COMPILE=1 pip install .
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from setuptools import setup

# mypyc is part of mypy; the pins are the test extra's, so the compiled core is the code `make lint` checks
# (mypyc type-checks what the core imports: policy.py reads YAML).
BUILD_REQUIRES = ["mypy>=1.13,<2", "types-PyYAML>=6,<7"]
ROOT = Path(__file__).resolve().parent


def compiled_modules() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["tool"]["federator"]["compiled"])


def _options() -> dict[str, Any]:
    wanted = os.environ.get("FEDERATOR_COMPILE", "")
    if wanted not in ("", "0", "1"):
        raise SystemExit(f"FEDERATOR_COMPILE: must be 1 (compile the placement core) or 0, got {wanted!r}")
    if wanted != "1":
        return {}
    try:
        from mypyc.build import mypycify
    except ImportError:
        # The first pass of a PEP 517 build asks what the build needs (setuptools collects
        # setup_requires for get_requires_for_build_wheel); the build itself then runs with mypy.
        return {"setup_requires": BUILD_REQUIRES}
    paths = ["src/" + m.replace(".", "/") + ".py" for m in compiled_modules()]
    return {"ext_modules": mypycify(paths, opt_level="3")}


setup(**_options())
