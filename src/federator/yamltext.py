"""What is wrong with a YAML file, in one line: the files users and operators hand the CLI (policies,
kubeconfigs, scheduler configurations) are refused naming the problem and where it is, never with a
traceback or yaml's four-line excerpt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def yaml_problem(exc: yaml.YAMLError) -> str:
    """`not valid YAML: <problem> (line L, column C)`, from yaml's own account of the error."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"not valid YAML: {problem} (line {mark.line + 1}, column {mark.column + 1})"
    return "not valid YAML: " + " ".join(str(exc).split())


def utf8_problem(data: bytes, exc: UnicodeDecodeError) -> str:
    """`is not UTF-8 text (byte 0x.. at offset N)`: a binary file given where a YAML one belongs."""
    return f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"


def read_text(path: Path) -> str:
    """A file as UTF-8 text: OSError as reading raises it, ValueError (`utf8_problem`) for a binary file, so a
    loader names the file and the byte instead of passing on a UnicodeDecodeError."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(utf8_problem(data, exc)) from None


class YamlFileError(ValueError):
    """Why a YAML file could not be read, in one line; the caller names the file (and the flag)."""


def load_yaml_file(path: Path) -> Any:
    """A YAML file's one document: YamlFileError if it cannot be read, is not UTF-8 text, is not YAML, or is
    nested deeper than the parser recurses."""
    try:
        text = read_text(path)
    except OSError as exc:
        raise YamlFileError(f"cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise YamlFileError(str(exc)) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise YamlFileError(yaml_problem(exc)) from exc
    except RecursionError as exc:
        raise YamlFileError("nested too deep") from exc
