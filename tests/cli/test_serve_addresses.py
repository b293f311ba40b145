"""`federator serve` with a bad or busy address: one line naming the flag, no traceback, no wrapped port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    args = {"--listen": "127.0.0.1:0", "--metrics-listen": "127.0.0.1:0"}
    args.update(zip(flags[::2], flags[1::2], strict=True))
    return subprocess.run([sys.executable, "-m", "federator", "serve", "--insecure", "--db", str(tmp_path / "f.db"),
                           *(x for kv in args.items() for x in kv)],
                          capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(("flag", "value"), [
    ("--listen", "127.0.0.1:99999"),  # grpcio would listen on 34463
    ("--listen", "127.0.0.1"),
    ("--metrics-listen", "abc"),
    ("--metrics-listen", "127.0.0.1:-1"),
])
def test_a_malformed_address_is_refused_before_anything_binds(tmp_path: Path, flag: str, value: str) -> None:
    out = _serve(tmp_path, flag, value)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == f"federator serve: {flag}: expected HOST:PORT with a port 0-65535, got {value!r}"
    assert not (tmp_path / "f.db").exists()


def test_a_busy_metrics_address_names_its_flag(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _serve(tmp_path, "--metrics-listen", f"127.0.0.1:{port}")
    assert out.returncode != 0
    assert f"--metrics-listen: cannot bind 127.0.0.1:{port}: Address already in use" in out.stderr
    assert "Traceback" not in out.stderr
