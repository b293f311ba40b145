"""A local federation: a federator and its agents as separate processes on loopback.

`federator demo` runs one; the end-to-end tests run them too, so what the demo
shows is what the tests check: real processes speaking real gRPC over sockets,
with mTLS by default (a CA and one certificate per process, made in
`workdir/certs`). `client` is what an in-process client needs to talk to it;
`client_args()` is the same for a `federator` command line.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import ClientOptions, user_files

_BIND_FAILED = b"--listen: cannot bind"


def _ephemeral_ports() -> range:
    """The ports the kernel hands out as the local end of outgoing connections."""
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def free_listen_ports(n: int, host: str = "127.0.0.1", rng: random.Random | None = None) -> list[int]:
    """`n` distinct free TCP ports on `host` outside the kernel's ephemeral range (0 for any not found).

    Why not port 0: the kernel picks it from the ephemeral range. A server that is restarted
    keeps its port (its clients reconnect to it), and while no one listens there any outgoing
    connection on the machine may take it as its local port, even a client's own reconnect to
    it (a TCP self-connect); the restarted server then cannot bind. A port chosen now and bound
    later is exposed the same way in between.
    """
    rng = rng or random.Random()
    ephemeral = _ephemeral_ports()
    held: list[socket.socket] = []
    try:
        for _ in range(100 * n):
            if len(held) == n:
                break
            port = rng.randrange(10000, 65536)
            if port in ephemeral:
                continue
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.bind((host, port))
            except OSError:
                probe.close()
                continue
            held.append(probe)
        ports = [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()
    return ports + [0] * (n - len(ports))


def free_listen_port(host: str = "127.0.0.1", rng: random.Random | None = None) -> int:
    """One port of `free_listen_ports`: where a local federation listens."""
    return free_listen_ports(1, host, rng)[0]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@dataclass
class LocalFederation:
    """Starts and stops federator and agent processes; every process logs to workdir."""

    workdir: Path
    fleet: Path | None = None
    time_scale: float = 1.0
    serve_args: list[str] = field(default_factory=list)
    server: Process | None = None
    agents: dict[str, Process] = field(default_factory=dict)
    grpc_target: str = ""
    metrics_url: str = ""
    agent_endpoints: dict[str, str] = field(default_factory=dict)  # cluster -> base URL of /metrics, /readyz
    tls: bool = True  # False: every process runs with --insecure (plaintext)

    @property
    def certs(self) -> CertsDir:
        return CertsDir(self.workdir / "certs")

    @property
    def client(self) -> ClientOptions:
        """Address and credentials for talking to this federation's job API (the `admin` user)."""
        if not self.tls:
            return ClientOptions(server=self.grpc_target, insecure=True)
        return ClientOptions(server=self.grpc_target, tls=user_files(self.certs, "admin"))

    def client_args(self) -> list[str]:
        """`--server` and the TLS flags for a `federator submit|get|cancel|watch` command line."""
        return ["--server", self.grpc_target, *self._tls_args()]

    def _tls_args(self) -> list[str]:
        if not self.tls:
            return ["--insecure"]
        if not self.certs.ca_cert.exists():
            init_ca(self.certs)
        return ["--certs-dir", str(self.certs.root)]

    def start_server(self, *, timeout: float = 30.0) -> None:
        """Start `federator serve`; a restart listens on the port the first start got.

        A restart whose port is still held for a moment (a connection's last socket on
        it) is tried again until `timeout`, as a supervisor would restart it.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "ready.json"
        ready.unlink(missing_ok=True)
        given = self.grpc_target or "127.0.0.1:0"
        host, _, port = given.rpartition(":")
        pick = port == "0" and _is_ipv4(host)  # any free port: take one a restart can keep

        def spawn() -> Process:
            listen = f"{host}:{free_listen_port(host)}" if pick else given  # a fresh pick if one was taken
            return self._spawn("federator", [
                "serve", "--listen", listen, "--metrics-listen", "127.0.0.1:0",
                "--db", str(self.workdir / "federator.db"), "--ready-file", str(ready), *self._tls_args(),
                *self.serve_args])

        deadline = time.monotonic() + timeout
        log = self.workdir / "federator.log"
        logged = log.stat().st_size if log.exists() else 0
        self.server = spawn()
        while not ready.exists():
            if not self.server.alive():
                with log.open("rb") as f:
                    f.seek(logged)
                    said = f.read()
                if _BIND_FAILED not in said or time.monotonic() > deadline:
                    raise RuntimeError(f"federator exited with {self.server.popen.returncode}; see {self.server.log}")
                time.sleep(0.2)
                logged = log.stat().st_size
                self.server = spawn()
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"federator not ready after {timeout}s; see {self.server.log}")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.grpc_target = info["grpc"]  # keep the port across restarts: agents reconnect to it
        self.metrics_url = info["metrics"]

    def start_agent(self, cluster: str, *extra: str, server: str = "", metrics: bool = False,
                    timeout: float = 30.0) -> Process:
        """An agent for a fleet cluster; `server` overrides the address it dials (e.g. a proxy).

        With `metrics` the agent serves /metrics, /healthz and /readyz on a free
        loopback port, whose base URL lands in `agent_endpoints[cluster]`.
        """
        if self.fleet is None:
            raise ValueError("a fleet file is needed for simulated agents")
        tls = self._tls_args()
        if self.tls:
            identity = Identity(IdentityKind.CLUSTER, cluster)
            if not self.certs.cert(identity).exists():
                issue(self.certs, identity)
        args = ["agent", "--cluster", cluster, "--server", server or self.grpc_target, "--sim", str(self.fleet),
                "--time-scale", str(self.time_scale), *tls, *extra]
        ready = self.workdir / f"agent-{cluster}.ready.json"
        if metrics:
            ready.unlink(missing_ok=True)
            args += ["--metrics-listen", "127.0.0.1:0", "--ready-file", str(ready)]
        proc = self._spawn(f"agent-{cluster}", args)
        self.agents[cluster] = proc
        if metrics:
            self._wait_for(ready, proc, timeout)
            self.agent_endpoints[cluster] = json.loads(ready.read_text())["metrics"].removesuffix("/metrics")
        return proc

    @staticmethod
    def _wait_for(ready: Path, proc: Process, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see {proc.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{proc.name} not ready after {timeout}s; see {proc.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        for proc in self.agents.values():
            proc.stop()
        if self.server:
            self.server.stop()

    def _spawn(self, name: str, args: list[str]) -> Process:
        log = self.workdir / f"{name}.log"
        out = log.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}  # flags say it all
        env["PYTHONUNBUFFERED"] = "1"
        popen = subprocess.Popen([sys.executable, "-m", "federator", *args], stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=env)
        out.close()
        return Process(name, popen, log)
