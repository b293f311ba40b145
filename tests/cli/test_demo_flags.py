"""`federator demo` and `submit` with flags or folders they cannot use: one line naming the flag or folder,
before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import federator_cli


@pytest.mark.parametrize("case", ["timeout", "workdir-under-a-file", "empty-jobs-folder"])
def test_demo_refuses_what_it_cannot_use(tmp_path: Path, case: str) -> None:
    (tmp_path / "file").write_text("")
    (tmp_path / "empty").mkdir()
    args, said = {
        "timeout": (["--timeout", "0"], "--timeout: must be a positive number of seconds, got 0"),
        "workdir-under-a-file": (["--workdir", str(tmp_path / "file" / "w")],
                                 f"--workdir: cannot use {tmp_path / 'file' / 'w'}: Not a directory"),
        "empty-jobs-folder": (["--jobs", str(tmp_path / "empty")],
                              f"{tmp_path / 'empty'}: folder: holds no job files (.yaml, .yml, .json)"),
    }[case]
    out = federator_cli("demo", "--insecure", *args)
    assert out.returncode == 2
    assert out.stderr.strip() == f"federator demo: {said}"


def test_submitting_an_empty_folder_says_so_and_dials_nothing(tmp_path: Path) -> None:
    out = federator_cli("submit", "-f", str(tmp_path), "--insecure", "--server", "127.0.0.1:1")
    assert out.returncode != 0
    assert out.stderr.splitlines()[0] == f"error: {tmp_path}: folder: holds no job files (.yaml, .yml, .json)"
