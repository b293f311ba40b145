"""Addresses on the command lines: a bad or busy one is one line naming the flag, no traceback, no wrapped port."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from federator.listen import server_address
from federator.local import LocalFederation

from support import EXAMPLES


def _federator(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def _serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    args = {"--listen": "127.0.0.1:0", "--metrics-listen": "127.0.0.1:0"}
    args.update(zip(flags[::2], flags[1::2], strict=True))
    return _federator("serve", "--insecure", "--db", str(tmp_path / "f.db"), *(x for kv in args.items() for x in kv))


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


@pytest.mark.parametrize(("flag", "why"), [("--listen", "in use"), ("--metrics-listen", "Address already in use")])
def test_serve_on_a_busy_address_says_which_flag_and_why(tmp_path: Path, flag: str, why: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _serve(tmp_path, flag, f"127.0.0.1:{port}")
    assert out.returncode != 0
    assert f"{flag}: cannot bind 127.0.0.1:{port}: {why}" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_second_federator_on_the_port_of_a_running_one_is_refused(tmp_path: Path) -> None:
    """grpcio's default SO_REUSEPORT let both bind, and the kernel dealt connections between them."""
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml", tls=False)
    try:
        fed.start_server()
        out = _serve(tmp_path, "--listen", fed.grpc_target)
        assert out.returncode != 0
        assert f"--listen: cannot bind {fed.grpc_target}: in use" in out.stderr
        assert fed.server is not None and fed.server.alive()
    finally:
        fed.stop()


@pytest.mark.parametrize("command", [
    ["agent", "--cluster", "west-1", "--insecure"],
    ["get", "jobs", "--insecure"],
    ["usage", "--insecure"],
])
@pytest.mark.parametrize(("server", "why"), [
    # grpcio would dial 127.0.0.1:99999 as port 34463 and retry it for ever
    ("127.0.0.1:99999", "port 99999 of '127.0.0.1:99999' is not 0-65535"),
    # the dialler retried federator:707O for seconds, then said it could not parse the port
    ("federator:707O", "port '707O' of 'federator:707O' is not a number 0-65535"),
], ids=["past-65535", "not-a-number"])
def test_a_server_port_that_can_never_be_dialled_is_refused_by_every_command_that_dials(
        command: list[str], server: str, why: str) -> None:
    out = _federator(*command, "--server", server)
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1] == f"federator {command[0]}: error: argument --server: {why}"


@pytest.mark.parametrize("target", ["127.0.0.1:7070", "federator.example:443", "dns:///federator:7070",
                                    "unix:/run/federator.sock", "[::1]:7070", "federator", "unix-abstract:fed",
                                    "vsock:3:7070", "ipv6:[::1]:7070", "dns:federator", "[fe80::1%eth0]:7070"])
def test_any_other_grpc_target_is_left_to_the_dialler(target: str) -> None:
    assert server_address(target) == target


@pytest.mark.parametrize(("url", "host"), [("http://fed.example:7070", "fed.example:7070"),
                                           ("https://10.0.0.1:443/", "10.0.0.1:443")])
def test_a_url_given_as_server_is_told_to_be_host_port(url: str, host: str) -> None:
    """gRPC read http:// as a scheme and answered "Misformatted domain name"."""
    with pytest.raises(argparse.ArgumentTypeError) as err:
        server_address(url)
    assert str(err.value) == f"give HOST:PORT, not a URL: {url!r} (did you mean {host!r}?)"


@pytest.mark.parametrize("value", ["99999999999", "-1", "0", "1001", "ten"])
def test_a_page_size_out_of_range_is_refused_before_anything_dials(value: str) -> None:
    """99999999999 ended `get jobs` with a protobuf ValueError traceback; -1 went to the federator to be refused."""
    out = _federator("get", "jobs", "--insecure", "--server", "127.0.0.1:1", "--page-size", value)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().endswith(
        f"federator get: error: argument --page-size: expected a number of jobs from 1 to 1000, got {value!r}")
    assert "Traceback" not in out.stderr
