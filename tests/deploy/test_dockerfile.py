"""The Dockerfile cannot be built here (no Docker); check what can be checked without building it."""

from __future__ import annotations

import json
import re

from deploy_support import ROOT

from federator.cli import build_parser

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", DOCKERFILE, re.MULTILINE)]


def test_multi_stage_and_the_runtime_runs_as_non_root() -> None:
    assert len(_instructions("FROM")) == 2
    assert _instructions("USER") == ["65532:65532"]  # the charts' runAsUser
    assert "COPY --from=build /opt/federator /opt/federator" in DOCKERFILE


def test_default_command_is_a_valid_federator_serve() -> None:
    entrypoint = json.loads(_instructions("ENTRYPOINT")[0])
    cmd = json.loads(_instructions("CMD")[0])
    assert entrypoint == ["federator"]
    args = build_parser().parse_args(cmd)
    assert args.command == "serve"
    assert args.listen == "0.0.0.0:7070"


def test_build_context_has_what_pip_install_needs() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    for needed in ("!pyproject.toml", "!setup.py", "!README.md", "!src/"):
        assert needed in ignore
    for copied in ("pyproject.toml", "setup.py", "README.md", "src"):
        assert (ROOT / copied).exists()
        assert copied in DOCKERFILE


def test_the_image_compiles_the_placement_core_and_checks_it_did() -> None:
    build_stage = DOCKERFILE.split("\nFROM ")[1]
    assert "FEDERATOR_COMPILE=1 /opt/federator/bin/pip install . \\" in build_stage
    assert "gcc" in build_stage  # the compiler stays in the build stage
    assert "s.COMPILED" in build_stage  # a build that fell back to interpreted fails, not ships half as fast
