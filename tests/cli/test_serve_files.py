"""Files handed to `federator serve` that cannot be used: one line naming the flag, the file and the problem,
no traceback, and the federator does not start on them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from federator.security.pki import CertsDir, init_ca

from support import federator_cli

BINARY = b"\xf7\x00\x81binary"
BROKEN_YAML = b"a: [\n"


def _serve(*flags: str) -> subprocess.CompletedProcess[str]:
    return federator_cli("serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", *flags)


def _refused(out: subprocess.CompletedProcess[str], line_start: str, why: str) -> None:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    lines = [x for x in out.stderr.splitlines() if line_start in x]
    assert len(lines) == 1, out.stderr
    assert why in lines[0], lines[0]


@pytest.mark.parametrize(("make", "why"), [
    ("parent is a file", "Not a directory"),
    ("not a database", "file is not a database"),
])
def test_a_db_that_cannot_be_opened_names_the_flag_and_the_file(tmp_path: Path, make: str, why: str) -> None:
    if make == "parent is a file":
        (tmp_path / "file").write_text("")
        db = tmp_path / "file" / "federator.db"
    else:
        db = tmp_path / "federator.db"
        db.write_text("these are not the jobs you are looking for\n" * 100)
    _refused(_serve("--insecure", "--db", str(db)), f"--db: cannot open the job store {db}: ", why)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    return c


@pytest.mark.parametrize("flag", ["--revocation-list", "--trust", "--token-file", "--accelerator-catalog",
                                  "--policy"])
@pytest.mark.parametrize(("data", "why"), [
    (BINARY, "is not UTF-8 text (byte 0xf7 at offset 0)"),
    (BROKEN_YAML, ""),  # each file's own words; what matters is one line naming the flag and the file
], ids=["binary", "broken"])
def test_a_file_serve_cannot_use_names_the_flag_and_the_file(tmp_path: Path, certs: CertsDir, flag: str,
                                                              data: bytes, why: str) -> None:
    path = tmp_path / "given"
    path.write_bytes(data)
    out = _serve("--certs-dir", str(certs.root), "--db", str(tmp_path / "f.db"), flag, str(path))
    _refused(out, f"{flag}: {path}", why)


@pytest.mark.parametrize(("flag", "value", "must"), [
    ("--cycle-interval", "0", "a positive number"),  # the loop would spin
    ("--cycle-interval", "inf", "a positive number"),  # leases would be checked only when something happened
    ("--report-interval", "nan", "a positive number"),
    ("--lease-seconds", "nan", "a positive number"),
    ("--settle-seconds", "nan", "0 or a positive number"),  # a missing cluster would hold the loop for ever
    ("--settle-seconds", "-1", "0 or a positive number"),
    ("--max-reports-per-second", "-2", "a positive number"),
])
def test_a_timing_flag_that_is_not_a_usable_number_is_refused(tmp_path: Path, flag: str, value: str,
                                                               must: str) -> None:
    out = _serve("--insecure", "--db", str(tmp_path / "f.db"), flag, value)
    assert out.returncode == 2
    assert out.stderr.strip() == f"federator serve: {flag}: must be {must}, got {value}"
    assert not (tmp_path / "f.db").exists()


@pytest.mark.parametrize(("flag", "value", "said"), [
    ("--max-message-bytes", "99999999999", "must be at most 1073741824 (1 GiB), got 99999999999"),  # a traceback
    ("--max-message-bytes", "0", "must be at least 1, got 0"),
    ("--max-replicas", "0", "must be at least 1, got 0"),
    ("--max-accelerators-per-job", "-4", "must be at least 1, got -4"),
    ("--max-pending-jobs", "0", "must be at least 1, got 0"),
    ("--max-pending-jobs-per-queue", "0", "must be at least 1, got 0"),
    ("--max-pending-jobs-per-user", "-1", "must be at least 1, got -1"),
    ("--max-watches-per-user", "-1", "must be 0 (no cap) or more, got -1"),
    ("--max-job-updates-per-second", "0", "must be positive, got 0.0"),
    ("--job-update-burst", "0", "must be at least 1, got 0"),
])
def test_a_limit_flag_out_of_range_is_refused_naming_the_flag_not_the_field_behind_it(
        tmp_path: Path, flag: str, value: str, said: str) -> None:
    out = _serve("--insecure", "--db", str(tmp_path / "f.db"), flag, value)
    assert out.returncode == 2
    assert out.stderr.strip() == f"federator serve: {flag}: {said}"
    assert not (tmp_path / "f.db").exists()


def test_a_ready_file_or_audit_log_that_cannot_be_written_is_refused_naming_the_flag(tmp_path: Path) -> None:
    nowhere = tmp_path / "missing" / "folder"
    out = _serve("--insecure", "--db", str(tmp_path / "f.db"), "--ready-file", str(nowhere / "ready.json"))
    assert out.returncode == 2
    assert out.stderr.strip() == (f"federator serve: --ready-file: {nowhere / 'ready.json'}: the folder {nowhere} "
                                  "does not exist")
    (tmp_path / "file").write_text("")
    out = _serve("--insecure", "--db", str(tmp_path / "f.db"), "--audit-log", str(tmp_path / "file" / "a.jsonl"))
    _refused(out, "--audit-log: cannot open", "Not a directory")


@pytest.mark.parametrize(("flags", "said"), [
    (["--watch-namespace", "Bad_NS"], "--watch-namespace: must be a namespace name (a lower-case DNS label), got "
                                      "'Bad_NS'"),
    (["--lease-name", "UP"], "--lease-name: must be a Lease name (a lower-case DNS subdomain), got 'UP'"),
    (["--lease-duration", "inf"], "--lease-duration: must be a positive number of seconds, got inf"),
    (["--retry-period", "20"], "--retry-period, --renew-deadline, --lease-duration: each must be shorter than the "
                               "next, got 20 / 10 / 15"),
], ids=["watch-namespace", "lease-name", "lease-duration-inf", "lease-order"])
def test_kubernetes_mode_flags_are_checked_before_anything_connects(tmp_path: Path, flags: list[str],
                                                                   said: str) -> None:
    out = _serve("--insecure", "--db", str(tmp_path / "f.db"), "--kubeconfig", "/nonexistent", *flags)
    assert out.returncode == 2
    assert out.stderr.strip() == f"federator serve: {said}"


def test_a_capability_flag_that_is_not_a_capability_name_is_refused_naming_the_flag(tmp_path: Path) -> None:
    out = _serve("--insecure", "--db", str(tmp_path / "f.db"), "--allow-capability", "IPC_LOCK",
                 "--allow-capability", "ipc lock")
    assert out.returncode == 2
    assert out.stderr.strip() == ("federator serve: --allow-capability: 'IPC LOCK' is not a capability name such "
                                  "as IPC_LOCK (upper case, no CAP_ prefix)")
    assert not (tmp_path / "f.db").exists()


@pytest.mark.parametrize(("drop", "why"), [
    ("", "--insecure turns TLS off"),
    ("--token-file", "needs --token-file"),
], ids=["insecure-with-everything", "no-token-file"])
def test_token_listen_names_what_is_really_in_the_way(tmp_path: Path, certs: CertsDir, drop: str, why: str) -> None:
    """`--insecure --token-listen ... --token-file ... --certs-dir ...` was told it "needs TLS files and
    --token-file", both of which it had: the conflict is --insecure, and the line says so."""
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("")
    flags = ["--token-listen", "127.0.0.1:0", "--certs-dir", str(certs.root)]
    if drop != "--token-file":
        flags += ["--token-file", str(tokens)]
    if not drop:
        flags.append("--insecure")
    out = _serve("--db", str(tmp_path / "f.db"), *flags)
    _refused(out, "--token-listen: ", why)
    assert "needs TLS files" not in out.stderr


@pytest.mark.parametrize(("flags", "said"), [
    (["--finished-job-ttl", "-1"], "--finished-job-ttl: must be 0 (keep forever) or more seconds, got -1.0"),
    (["--finished-job-ttl", "nan"], "--finished-job-ttl: must be 0 (keep forever) or more seconds, got nan"),
    (["--max-finished-jobs-per-user", "-2"], "--max-finished-jobs-per-user: must be 0 (no bound) or more, got -2"),
    (["--kubeconfig", "/nonexistent", "--finished-job-ttl", "60"],
     "--finished-job-ttl: not used in Kubernetes mode: a job lives as long as its FederatedJob"),
], ids=["negative-ttl", "nan-ttl", "negative-count", "kubernetes-mode"])
def test_a_finished_job_flag_that_cannot_be_used_is_refused_naming_the_flag(tmp_path: Path, flags: list[str],
                                                                            said: str) -> None:
    out = _serve("--insecure", "--db", str(tmp_path / "f.db"), *flags)
    assert out.returncode == 2
    assert out.stderr.strip().startswith(f"federator serve: {said}"), out.stderr


def test_a_start_over_the_pending_cap_says_so_before_the_first_refused_submit(tmp_path: Path) -> None:
    """Outside SRE: restarted with --max-pending-jobs 10000 over a store of 39,177 pending jobs, the federator said
    nothing; the first sign was Submits refused. The start now warns, naming the flag."""
    import os
    import signal
    import sys
    import time

    from federator.jobfile import parse_job
    from federator.server.federator import Federator
    from federator.store import SqliteJobStore

    db = tmp_path / "f.db"
    store = SqliteJobStore(db)
    fed = Federator(store=store)
    for i in range(3):
        fed.submit(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                              "metadata": {"name": f"j{i}"}, "spec": {"kind": "training", "resources": {"cpu": "1"}}}))
    store.close()
    ready = tmp_path / "ready.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    proc = subprocess.Popen([sys.executable, "-m", "federator", "serve", "--insecure", "--db", str(db),
                             "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--ready-file", str(ready),
                             "--max-pending-jobs", "2"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert ready.exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert "the store holds 3 pending jobs, over --max-pending-jobs 2: every Submit is refused" in err, err
