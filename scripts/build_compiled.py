#!/usr/bin/env python3
"""Build the package as it ships compiled (FEDERATOR_COMPILE=1), unpacked into build/compiled.

Why: the placement core runs compiled (mypyc) in the image, and compiled code is not the same
program: it checks every annotation at run time, calls functions of its own module directly, and
cannot be subclassed by interpreted code. So `make test` runs the scheduler, model, simulator and
server tests (and the store's pinned job fields) a second time against this build
(PYTHONPATH=build/compiled), and the throughput benchmark measures it. It is the real build: `pip
wheel` of this checkout through setup.py, the path `pip install .` takes in the Dockerfile, so a
module mypyc cannot compile fails here first.

The wheel is kept per hash of every file it is built from (setup.py, pyproject.toml, src/federator/): an
unchanged checkout reuses it, so a warm `make test` pays nothing. Prints the directory.

Usage: scripts/build_compiled.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def source_key() -> str:
    """A hash of everything the wheel is built from."""
    digest = hashlib.sha256()
    files = [ROOT / "setup.py", ROOT / "pyproject.toml", *sorted((ROOT / "src" / "federator").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".so", ".pyc"):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build(out: Path) -> Path:
    key = source_key()
    stamp = out / ".source-key"
    if stamp.exists() and stamp.read_text() == key:
        return out
    # pip builds in the tree, and setuptools copies into build/lib* over what an earlier build left there: a file
    # since removed from src/, or no longer listed as package data, would still ship in this wheel (and hide a
    # missing package-data entry from the tests that run on it). The C objects in build/temp* are kept.
    for stale in ROOT.glob("build/lib*"):
        shutil.rmtree(stale)
    with tempfile.TemporaryDirectory(prefix="federator-wheel-") as tmp:
        env = {**os.environ, "FEDERATOR_COMPILE": "1"}
        cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp, str(ROOT)]
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout)
            raise SystemExit(f"build_compiled: `FEDERATOR_COMPILE=1 pip wheel .` failed (exit {done.returncode})")
        (wheel,) = Path(tmp).glob("federator-*.whl")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(out)
    for ext in out.rglob("*.so"):
        ext.chmod(0o755)
    stamp.write_text(key)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "compiled")
    print(build(parser.parse_args().out))


if __name__ == "__main__":
    main()
