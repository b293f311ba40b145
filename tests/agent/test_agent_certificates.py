"""The agent says when its own TLS files are outside their dates: once per change, naming the file and the fix,
and exports when they expire (QA: an expired agent certificate logged only 'Socket closed', for ever)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from pathlib import Path

import pytest
from agent_support import FLEET
from prometheus_client import generate_latest

from federator.agent.agent import Agent, AgentConfig
from federator.agent.certificates import CertificateCheck
from federator.backends.sim.runtime import SimBackend
from federator.security import pki
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue
from federator.security.tls import TlsFiles, cluster_files

EAST = Identity(IdentityKind.CLUSTER, "east-1")


@pytest.fixture
def certs(tmp_path: Path) -> CertsDir:
    c = CertsDir(tmp_path / "certs")
    init_ca(c)
    return c


def _issue(certs: CertsDir, monkeypatch: pytest.MonkeyPatch, *, start_days_ago: float, days: int) -> TlsFiles:
    """east-1's certificate, valid from `start_days_ago` (negative: in the future) for `days`."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=start_days_ago)
    with monkeypatch.context() as m:
        m.setattr(pki, "_now", lambda: start)
        issue(certs, EAST, days=days)
    return cluster_files(certs, "east-1")


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.name == "federator.agent"]


def test_an_expired_certificate_is_one_error_naming_the_file_the_time_and_the_fix_until_it_is_renewed(
        certs: CertsDir, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    files = _issue(certs, monkeypatch, start_days_ago=3, days=1)
    dates: dict[str, float] = {}
    check = CertificateCheck(files, cluster="east-1", provider="acme", on_dates=dates.__setitem__)
    with caplog.at_level(logging.INFO, logger="federator.agent"):
        for _ in range(5):  # one failed connection after another
            assert check.check()
    (error,) = _lines(caplog, logging.ERROR)
    expired = pki.load_cert(files.cert).not_valid_after_utc  # type: ignore[arg-type]
    assert error.startswith(f"--cert: {files.cert}: the certificate of cluster east-1 expired at "
                            f"{expired:%Y-%m-%dT%H:%M:%SZ} (2 days ago)")
    # the federation's CA signed it: the provider label is not a provider CA (F5; test_agent_lasting_handshakes.py)
    assert "`federator certs issue --cluster east-1`" in error and "--provider" not in error
    assert "tls.secretName" in error
    assert dates["agent"] == pytest.approx(expired.timestamp())
    assert dates["ca"] > time.time()

    caplog.clear()
    issue(certs, EAST)  # renewed in place, as a Secret update would
    with caplog.at_level(logging.INFO, logger="federator.agent"):
        assert check.check() == ""
        assert check.check() == ""
    assert _lines(caplog, logging.ERROR) == []
    (renewed,) = _lines(caplog, logging.INFO)
    assert renewed.startswith(f"TLS files renewed: --cert {files.cert} valid until ")
    assert dates["agent"] > time.time() + 800 * 86400


def test_a_certificate_not_valid_yet_is_an_error_that_asks_about_the_clock(
        certs: CertsDir, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    files = _issue(certs, monkeypatch, start_days_ago=-1, days=30)
    with caplog.at_level(logging.INFO, logger="federator.agent"):
        assert CertificateCheck(files, cluster="east-1").at_start()
    (error,) = _lines(caplog, logging.ERROR)
    assert f"--cert: {files.cert}: the certificate of cluster east-1 is not valid before " in error
    assert "clock" in error


@pytest.mark.parametrize(("days", "warned"), [(10, True), (20, False)])
def test_a_certificate_expiring_within_two_weeks_is_a_warning_at_start(
        certs: CertsDir, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, days: int,
        warned: bool) -> None:
    files = _issue(certs, monkeypatch, start_days_ago=0, days=days)
    with caplog.at_level(logging.INFO, logger="federator.agent"):
        assert CertificateCheck(files, cluster="east-1").at_start() == ""
    warnings = _lines(caplog, logging.WARNING)
    assert len(warnings) == (1 if warned else 0)
    if warned:
        assert warnings[0].startswith(f"--cert: {files.cert} expires at ")
        assert "federator certs issue --cluster east-1" in warnings[0]
    assert _lines(caplog, logging.ERROR) == []


def test_an_agent_with_an_expired_certificate_says_so_once_while_it_retries_and_exports_its_expiry(
        certs: CertsDir, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    files = _issue(certs, monkeypatch, start_days_ago=3, days=1)

    async def body() -> Agent:
        backend = SimBackend(FLEET["c-1"])
        agent = Agent(AgentConfig(cluster="east-1", region="r", target="127.0.0.1:1", max_backoff=0.05,
                                  tls=files), backend)
        task = asyncio.create_task(agent.run())
        await asyncio.sleep(1.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await backend.stop()
        return agent

    with caplog.at_level(logging.INFO, logger="federator.agent"):
        agent = asyncio.run(body())
    errors = _lines(caplog, logging.ERROR)
    retries = [m for m in _lines(caplog, logging.WARNING) + _lines(caplog, logging.INFO)
               if m.startswith("stream to 127.0.0.1:1 lost")]
    assert len(retries) >= 3  # the first a WARNING, the tries after it INFO (agent/reconnect.py, `_level`)
    assert len([m for m in _lines(caplog, logging.WARNING) if m.startswith("stream to 127.0.0.1:1 lost")]) == 1
    assert len(errors) == 1 and "expired at" in errors[0]
    assert all("the agent's TLS files are outside their dates" in m for m in retries)
    scraped = generate_latest(agent.metrics.registry).decode()
    assert 'federator_agent_certificate_expiration_timestamp_seconds{certificate="agent",cluster="east-1"}' \
        in scraped
