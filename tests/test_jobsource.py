"""jobsource.py: `-` is standard input, read once however many times a submit reads its files, and said `<stdin>`."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from federator.jobsource import STDIN, TooLarge, read_job_text, source_name


def test_stdin_is_read_once_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"kind: FederatedJob\n")))
    assert read_job_text(STDIN, limit=100) == "kind: FederatedJob\n"
    assert read_job_text(STDIN, limit=100) == "kind: FederatedJob\n"  # a second reader gets the same text


def test_stdin_past_the_limit_is_refused_without_reading_it_all(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.BytesIO(b"x" * 1000)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stream))
    with pytest.raises(TooLarge) as refused:
        read_job_text(STDIN, limit=10)
    assert not refused.value.exact and stream.tell() == 11


def test_a_file_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "j.yaml"
    path.write_text("a: 1\n")
    assert read_job_text(path, limit=100) == "a: 1\n"
    assert source_name(path) == str(path) and source_name(STDIN) == "<stdin>"
