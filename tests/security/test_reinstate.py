"""A member whose key leaked is revoked, then brought back under a new key (`certs reinstate`), over real mTLS gRPC
(outside DR QA, D5: `certs issue` after `certs revoke --cluster` gave a certificate the federator refused for ever,
and no documented step re-admitted the member)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from federator.cli.get import list_clusters
from federator.local import LocalFederation
from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue, load_cert, region_of

from support import EXAMPLES, eventually

FAST = ["--report-interval", "0.3", "--cycle-interval", "0.2", "--lease-seconds", "2"]
EAST = Identity(IdentityKind.CLUSTER, "east-1")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def _state(fed: LocalFederation, cluster: str) -> str:
    return {c["name"]: c["state"] for c in list_clusters(fed.client)}.get(cluster, "")


@pytest.mark.e2e
def test_a_revoked_cluster_comes_back_under_a_new_key_and_the_leaked_one_stays_refused(tmp_path: Path) -> None:
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml", serve_args=FAST)
    try:
        fed.start_server()
        agent = fed.start_agent("west-1")
        eventually(lambda: _state(fed, "west-1") == "Ready", what="west-1")
        leaked = tmp_path / "leaked"
        leaked.mkdir()
        for name in ("west-1.crt", "west-1.key"):
            shutil.copy(fed.certs.root / "clusters" / name, leaked / name)
        assert cli("certs", "revoke", "--dir", str(fed.certs.root), "--cluster", "west-1").returncode == 0
        eventually(lambda: _state(fed, "west-1") == "Partitioned", what="west-1 cut off")
        agent.stop()

        out = cli("certs", "reinstate", "--dir", str(fed.certs.root), "--cluster", "west-1")
        assert out.returncode == 0, out.stderr
        assert f"by serial {load_cert(leaked / 'west-1.crt').serial_number:x}" in out.stdout
        fed.start_agent("west-1")  # the new pair, from the folder
        eventually(lambda: _state(fed, "west-1") == "Ready", what="west-1 back under its new key")
        fed.agents["west-1"].stop()

        log = fed.workdir / "agent-west-1.log"
        seen = log.stat().st_size
        fed.start_agent("west-1", "--cert", str(leaked / "west-1.crt"), "--key", str(leaked / "west-1.key"))
        eventually(lambda: "is revoked" in log.read_text()[seen:], what="the leaked certificate refused")
        assert _state(fed, "west-1") != "Ready"
    finally:
        fed.stop()


@pytest.fixture
def certs(tmp_path: Path) -> CertsDir:
    c = CertsDir(tmp_path / "certs")
    init_ca(c)
    issue(c, EAST)
    return c


def test_issue_for_a_name_revoked_refuses_and_names_the_way_back(certs: CertsDir) -> None:
    before = certs.cert(EAST).read_bytes()
    assert cli("certs", "revoke", "--dir", str(certs.root), "--cluster", "east-1").returncode == 0
    out = cli("certs", "issue", "--dir", str(certs.root), "--cluster", "east-1")
    assert out.returncode == 1
    assert "cluster east-1 is revoked by name" in out.stderr
    assert f"federator certs reinstate --dir {certs.root} --cluster east-1" in out.stderr
    assert certs.cert(EAST).read_bytes() == before  # the revoked certificate, whose serial reinstate revokes, kept


def test_reinstate_revokes_the_old_serial_before_lifting_the_name_and_keeps_a_record(certs: CertsDir) -> None:
    old = load_cert(certs.cert(EAST)).serial_number
    assert cli("certs", "revoke", "--dir", str(certs.root), "--cluster", "east-1").returncode == 0
    out = cli("certs", "reinstate", "--dir", str(certs.root), "--cluster", "east-1")
    assert out.returncode == 0, out.stderr
    from federator.security.auth import parse_revocations

    text = certs.revoked.read_text()
    listed = parse_revocations(text)
    new = load_cert(certs.cert(EAST)).serial_number
    assert old in listed.serials and new not in listed.serials
    assert EAST not in listed.identities
    assert "# cluster east-1  # revoked" in text and f"under serial {new:x}" in text
    again = cli("certs", "reinstate", "--dir", str(certs.root), "--cluster", "east-1")
    assert again.returncode == 1 and "not revoked by name" in again.stderr


def test_reinstate_without_the_ca_key_changes_nothing(certs: CertsDir) -> None:
    assert cli("certs", "revoke", "--dir", str(certs.root), "--cluster", "east-1").returncode == 0
    listed = certs.revoked.read_text()
    certs.ca_key.unlink()
    out = cli("certs", "reinstate", "--dir", str(certs.root), "--cluster", "east-1")
    assert out.returncode == 1 and "restore ca.key" in out.stderr
    assert certs.revoked.read_text() == listed


def test_a_user_reinstated_keeps_the_groups_of_the_certificate_it_replaces(certs: CertsDir) -> None:
    from cryptography.x509.oid import NameOID

    alice = Identity(IdentityKind.USER, "alice")
    issue(certs, alice, groups=("ml", "vision"))
    assert cli("certs", "revoke", "--dir", str(certs.root), "--user", "alice").returncode == 0
    assert cli("certs", "reinstate", "--dir", str(certs.root), "--user", "alice").returncode == 0
    subject = load_cert(certs.cert(alice)).subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["ml", "vision"]


@pytest.mark.parametrize("lost", ["key", "both"])
def test_issue_without_the_ca_key_never_suggests_init_over_an_existing_ca(certs: CertsDir, lost: str) -> None:
    """Outside DR QA, D6: a lost ca.key was answered "run `federator certs init` first", which over an existing CA
    (or with --force) cuts every agent and user off."""
    certs.ca_key.unlink()
    if lost == "both":
        certs.ca_cert.unlink()
    out = cli("certs", "issue", "--dir", str(certs.root), "--cluster", "north-1")
    assert out.returncode == 1
    if lost == "key":
        assert "restore ca.key from its offline copy" in out.stderr
        assert "Rolling the federation CA" in out.stderr and "do not run `certs init --force`" in out.stderr
        assert "run `federator certs init` first" not in out.stderr
    else:
        assert "run `federator certs init` first" in out.stderr


def test_a_batch_of_users_with_one_revoked_by_name_is_refused_whole(certs: CertsDir, tmp_path: Path) -> None:
    assert cli("certs", "revoke", "--dir", str(certs.root), "--user", "bob").returncode == 0
    users = tmp_path / "users.txt"
    users.write_text("alice\nbob,ml\n")
    out = cli("certs", "issue", "--dir", str(certs.root), "--users-from", str(users))
    assert out.returncode == 1
    assert "users.txt:2: user 'bob' is revoked by name" in out.stderr and "certs reinstate" in out.stderr
    assert not (certs.root / "users" / "alice.crt").exists()


def test_a_revocation_list_that_does_not_parse_stops_issue_naming_its_line(certs: CertsDir) -> None:
    certs.revoked.write_text("cluster east-1\nbogus line\n")
    out = cli("certs", "issue", "--dir", str(certs.root), "--cluster", "north-1")
    assert out.returncode == 1 and "revoked.txt:2:" in out.stderr and "Traceback" not in out.stderr


def test_a_provider_cluster_is_reinstated_on_its_providers_list_and_ca(certs: CertsDir) -> None:
    d = str(certs.root)
    assert cli("certs", "provider", "--dir", d, "--name", "acme", "--clusters", "acme-*",
               "--max-accelerators", "8").returncode == 0
    assert cli("certs", "issue", "--dir", d, "--provider", "acme", "--cluster", "acme-east").returncode == 0
    acme = certs.provider("acme")
    old = load_cert(acme.cert(Identity(IdentityKind.CLUSTER, "acme-east"))).serial_number
    assert cli("certs", "revoke", "--dir", d, "--provider", "acme", "--cluster", "acme-east").returncode == 0
    refused = cli("certs", "issue", "--dir", d, "--provider", "acme", "--cluster", "acme-east")
    assert refused.returncode == 1
    assert f"federator certs reinstate --dir {d} --provider acme --cluster acme-east" in refused.stderr
    out = cli("certs", "reinstate", "--dir", d, "--provider", "acme", "--cluster", "acme-east")
    assert out.returncode == 0, out.stderr
    from federator.security.auth import parse_revocations

    listed = parse_revocations(acme.revoked.read_text())
    assert old in listed.serials and Identity(IdentityKind.CLUSTER, "acme-east") not in listed.identities
    new = load_cert(acme.cert(Identity(IdentityKind.CLUSTER, "acme-east")))
    assert new.issuer == load_cert(acme.ca_cert).subject  # signed by the provider's CA, not the federation's
    assert not certs.revoked.exists() or "acme-east" not in certs.revoked.read_text()


def test_a_certificate_binding_a_region_is_reinstated_binding_the_same_region(certs: CertsDir) -> None:
    """A cluster certificate may bind its region (`certs issue --region`, a federator://region/R SAN URI): the new
    one reinstate issues binds the same region, since one without it would let the agent claim any region."""
    issue(certs, EAST, region="east")
    old = load_cert(certs.cert(EAST))
    assert region_of(old) == "east"
    assert cli("certs", "revoke", "--dir", str(certs.root), "--cluster", "east-1").returncode == 0
    out = cli("certs", "reinstate", "--dir", str(certs.root), "--cluster", "east-1")
    assert out.returncode == 0, out.stderr
    new = load_cert(certs.cert(EAST))
    assert new.serial_number != old.serial_number and region_of(new) == "east"
    assert f"serial {old.serial_number:x}" in certs.revoked.read_text()  # the leaked one stays refused
