"""The trust file re-read while the federator runs: what counts as a change (a Secret's symlink swap, a CA file),
what a refused file leaves in place, and SIGHUP in a real `federator serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from federator.cli.get import list_clusters
from federator.local import LocalFederation
from federator.security.pki import CertsDir, Identity, IdentityKind, create_ca, init_ca, issue
from federator.security.trust_reload import ReloadResult, TrustFile

from support import eventually, scraped

ACME = "  acme: {ca: providers/acme/ca.crt, clusters: ['acme-*'], revoked: providers/acme/revoked.txt}\n"
GLOBEX = "  globex: {ca: providers/globex/ca.crt, clusters: ['gx-*']}\n"


@pytest.fixture
def certs(tmp_path: Path) -> CertsDir:
    c = CertsDir(tmp_path / "certs")
    init_ca(c)
    for name in ("acme", "globex"):
        create_ca(c.provider(name), common_name=f"{name} provider CA")
    c.provider("acme").revoked.write_text("cluster acme-9\n")
    c.trust.write_text("providers:\n" + ACME)
    return c


def test_a_secret_volume_updated_by_a_symlink_swap_is_reloaded(tmp_path: Path, certs: CertsDir) -> None:
    """A Kubernetes Secret volume: trust.yaml -> ..data/trust.yaml, ..data -> ..<timestamp>/, swapped to a new
    folder whose files may be no newer than the old ones (here: older)."""
    mount = tmp_path / "mount"
    mount.mkdir()
    for version, text in (("..v1", "providers:\n" + ACME), ("..v2", "providers:\n" + ACME + GLOBEX)):
        folder = mount / version
        (folder / "providers").mkdir(parents=True)
        for name in ("acme", "globex"):
            (folder / "providers" / name).symlink_to(certs.provider(name).root)
        (folder / "trust.yaml").write_text(text)
    os.utime(mount / "..v2" / "trust.yaml", (1, 1))  # the new file's mtime is older than the old one's
    (mount / "..data").symlink_to("..v1")
    (mount / "trust.yaml").symlink_to("..data/trust.yaml")
    (mount / "providers").symlink_to("..data/providers")
    trust = TrustFile(mount / "trust.yaml", federation_ca=certs.ca_cert)
    assert sorted(trust.current.providers) == ["acme"]
    assert trust.poll() is ReloadResult.UNCHANGED
    (mount / "..data_tmp").symlink_to("..v2")
    os.replace(mount / "..data_tmp", mount / "..data")  # the kubelet's atomic swap
    assert trust.poll() is ReloadResult.OK
    assert sorted(trust.current.providers) == ["acme", "globex"]


def test_a_provider_ca_file_replaced_under_an_unchanged_trust_file_is_reloaded(certs: CertsDir) -> None:
    trust = TrustFile(certs.trust, federation_ca=certs.ca_cert)
    old_ca = trust.current.providers["acme"].ca
    create_ca(certs.provider("acme"), common_name="acme provider CA, rotated")
    told: list[tuple[str, str]] = []
    trust.subscribe(lambda old, new: told.append((old.providers["acme"].ca.subject.rfc4514_string(),
                                                  new.providers["acme"].ca.subject.rfc4514_string())))
    assert trust.poll() is ReloadResult.OK
    assert trust.current.providers["acme"].ca != old_ca
    assert told == [("CN=acme provider CA", "CN=acme provider CA\\, rotated")]


def test_a_reload_does_not_audit_a_providers_old_revocations_again(certs: CertsDir) -> None:
    audited: list[tuple[str, list[str]]] = []
    trust = TrustFile(certs.trust, federation_ca=certs.ca_cert,
                      on_revoked=lambda provider, entries: audited.append((provider, entries)))
    assert audited == [("acme", ["cluster acme-9"])]
    assert trust.reload() is ReloadResult.OK  # SIGHUP with nothing changed: re-read, nothing new to say
    certs.trust.write_text("providers:\n" + ACME + GLOBEX)
    assert trust.poll() is ReloadResult.OK
    assert audited == [("acme", ["cluster acme-9"])]


def test_a_trust_file_gone_from_disk_keeps_the_last_good_trust(certs: CertsDir) -> None:
    trust = TrustFile(certs.trust, federation_ca=certs.ca_cert)
    certs.trust.unlink()
    assert trust.poll() is ReloadResult.REFUSED
    assert sorted(trust.current.providers) == ["acme"] and "cannot read" in trust.problem
    assert trust.poll() is ReloadResult.UNCHANGED  # still gone: nothing new
    certs.trust.write_text("providers:\n" + ACME)
    assert trust.poll() is ReloadResult.OK and trust.problem == ""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", *args], capture_output=True, text=True, timeout=60,
                          env=env)


FLEET = """
clusters:
  - {name: acme-1, region: east, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
  - {name: gx-1, region: west, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
"""


def _metric(fed: LocalFederation, name: str, **labels: str) -> float | None:
    return scraped(fed.metrics_url, name, **labels)


@pytest.mark.e2e
def test_sighup_makes_a_running_federator_take_the_trust_file_as_it_now_is(tmp_path: Path) -> None:
    """`federator serve` with the poll off: SIGHUP alone adds globex (its waiting agent gets in), removes acme (its
    live agent is told PERMISSION_DENIED and why) and, given a broken file, keeps the last good trust, says where
    the file is wrong and counts the refusal; the agents it did not concern stay connected throughout."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet,
                          serve_args=["--report-interval", "0.3", "--cycle-interval", "0.2", "--lease-seconds", "2",
                                      "--trust-poll-seconds", "0"])
    certs = fed.certs
    init_ca(certs)
    out = _cli("certs", "provider", "--dir", str(certs.root), "--name", "acme", "--clusters", "acme-*")
    assert out.returncode == 0, out.stderr
    create_ca(certs.provider("globex"), common_name="globex provider CA")  # not in trust.yaml yet
    for provider, name in (("acme", "acme-1"), ("globex", "gx-1")):
        issue(certs.provider(provider), Identity(IdentityKind.CLUSTER, name))
    log = fed.workdir / "federator.log"

    def states() -> dict[str, str]:
        return {c["name"]: c["state"] for c in list_clusters(fed.client)}

    try:
        fed.start_server()
        assert fed.server is not None
        fed.start_agent("acme-1", "--provider", "acme")
        fed.start_agent("gx-1", "--provider", "globex")
        eventually(lambda: states() == {"acme-1": "Ready"}, what="acme-1 only")
        out = _cli("certs", "provider", "--dir", str(certs.root), "--name", "globex", "--clusters", "gx-*")
        assert out.returncode == 0, out.stderr
        time.sleep(1.0)  # no poll: nothing happens until SIGHUP
        assert states() == {"acme-1": "Ready"} and _metric(fed, "federator_trust_reload_total", result="ok") == 0

        fed.server.popen.send_signal(signal.SIGHUP)
        eventually(lambda: states() == {"acme-1": "Ready", "gx-1": "Ready"}, what="gx-1 let in")
        assert "trust file" in log.read_text() and "added globex" in log.read_text()

        text = certs.trust.read_text()
        certs.trust.write_text(text[:text.index("  acme:")] + text[text.index("  globex:"):])  # acme leaves
        fed.server.popen.send_signal(signal.SIGHUP)
        eventually(lambda: states()["acme-1"] == "Partitioned", what="acme-1 cut off")
        eventually(lambda: "PERMISSION_DENIED" in (fed.workdir / "agent-acme-1.log").read_text()
                   and "provider 'acme', whose CA signed its certificate, is no longer in the trust file"
                   in (fed.workdir / "agent-acme-1.log").read_text(), what="acme-1's agent told why")
        assert states()["gx-1"] == "Ready"

        certs.trust.write_text(certs.trust.read_text() + "  oops: [\n")  # broken: the last good trust stays
        fed.server.popen.send_signal(signal.SIGHUP)
        eventually(lambda: _metric(fed, "federator_trust_reload_total", result="refused") == 1, what="refusal")
        assert _metric(fed, "federator_trust_reload_failing") == 1
        assert _metric(fed, "federator_trust_reload_total", result="ok") == 2
        refused = [line for line in log.read_text().splitlines() if "trust file refused" in line]
        assert len(refused) == 1 and str(certs.trust) in refused[0] and "line" in refused[0], refused
        assert fed.server.alive()
        time.sleep(1.0)
        assert states() == {"acme-1": "Partitioned", "gx-1": "Ready"}
    finally:
        fed.stop()
