"""Certificates, identities, revocations, and the Authenticator's decisions (no sockets)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from federator.security.auth import AuthDenied, Authenticator, Peer, RevocationList, parse_revocations
from federator.security.limits import RejectReason
from federator.security.pki import CertsDir, Identity, IdentityKind, PkiError, identity_of, init_ca, issue, load_cert

EAST = Identity(IdentityKind.CLUSTER, "east-1")
WEST = Identity(IdentityKind.CLUSTER, "west-1")
ADMIN = Identity(IdentityKind.USER, "admin")


def auth_context(certs: CertsDir, identity: Identity | None) -> dict[str, list[bytes]]:
    """What grpc's auth_context() holds for a verified client certificate (or none)."""
    if identity is None:
        return {"transport_security_type": [b"ssl"]}
    return {"transport_security_type": [b"ssl"], "x509_pem_cert": [certs.cert(identity).read_bytes()]}


def test_init_makes_a_ca_a_server_and_an_admin_with_private_keys(certs: CertsDir) -> None:
    for path in (certs.ca_key, certs.server_key, certs.key(ADMIN), certs.key(EAST)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert identity_of(load_cert(certs.cert(EAST))) == EAST
    assert identity_of(load_cert(certs.cert(ADMIN))) == ADMIN
    assert identity_of(load_cert(certs.server_cert)) == Identity(IdentityKind.SERVER, "federator")
    assert identity_of(load_cert(certs.ca_cert)) is None


def test_init_refuses_to_replace_a_ca_without_force(certs: CertsDir) -> None:
    with pytest.raises(PkiError, match="--force"):
        init_ca(certs)


@pytest.mark.parametrize("name", ["East-1", "", "a" * 64, "-x", "x_y"], ids=["upper", "empty", "long", "dash", "under"])
def test_issue_refuses_names_that_are_not_dns_labels(certs: CertsDir, name: str) -> None:
    with pytest.raises(PkiError, match="--cluster"):
        issue(certs, Identity(IdentityKind.CLUSTER, name))


def test_issue_without_a_ca_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="certs init"):
        issue(CertsDir(tmp_path), EAST)


@pytest.mark.parametrize(("text", "problem"), [
    ("cluster east-1\nbogus line", "revoked.txt:2"),
    ("serial xyz", "serial: not a hexadecimal number"),
    ("cluster", "expected 'cluster NAME'"),
], ids=["unknown-keyword", "bad-serial", "missing-name"])
def test_a_bad_revocation_line_is_refused_naming_the_line(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_revocations(text)


def test_revocations_parse_names_serials_and_comments() -> None:
    r = parse_revocations("# header\ncluster east-1  # stolen laptop\nuser bob\nserial 0a:ff\n\n")
    assert r.identities == {EAST, Identity(IdentityKind.USER, "bob")}
    assert r.serials == {0x0AFF}


def test_the_revocation_list_is_reloaded_when_the_file_changes_and_a_bad_file_keeps_the_last(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "revoked.txt"
    rl = RevocationList(path, interval=1.0, clock=lambda: now[0])
    assert not rl.revoked(EAST, 1)
    path.write_text("cluster east-1\n")
    assert not rl.revoked(EAST, 1)  # checked at most once per interval
    now[0] += 1.5
    assert rl.revoked(EAST, 1) and not rl.revoked(WEST, 2)
    path.write_text("cluster east-1\nnonsense\n")
    now[0] += 1.5
    assert rl.revoked(EAST, 1)  # the broken file is ignored, the last good list stays


def test_an_agent_is_its_certificate(certs: CertsDir) -> None:
    auth = Authenticator()
    peer = auth.agent(auth_context(certs, EAST), "east-1")
    assert isinstance(peer, Peer) and peer.identity == EAST and peer.via == "certificate"


@pytest.mark.parametrize(("identity", "hello", "reason", "words"), [
    (EAST, "west-1", RejectReason.IDENTITY_MISMATCH, "hello.cluster: 'west-1' does not match"),
    (ADMIN, "admin", RejectReason.IDENTITY_MISMATCH, "needs a cluster certificate"),
    (None, "east-1", RejectReason.UNAUTHENTICATED, "needs a cluster client certificate"),
], ids=["other-cluster", "user-cert", "no-cert"])
def test_an_agent_claiming_what_its_certificate_does_not_say_is_refused(
        certs: CertsDir, identity: Identity | None, hello: str, reason: RejectReason, words: str) -> None:
    denied = Authenticator().agent(auth_context(certs, identity), hello)
    assert isinstance(denied, AuthDenied) and denied.reason is reason and words in denied.message


def test_a_revoked_cluster_is_refused_by_name_and_by_serial(certs: CertsDir, tmp_path: Path) -> None:
    path = tmp_path / "revoked.txt"
    path.write_text("cluster east-1\n")
    auth = Authenticator(revocations=RevocationList(path))
    denied = auth.agent(auth_context(certs, EAST), "east-1")
    assert isinstance(denied, AuthDenied) and denied.reason is RejectReason.REVOKED
    assert isinstance(auth.agent(auth_context(certs, WEST), "west-1"), Peer)
    serial = load_cert(certs.cert(WEST)).serial_number
    path.write_text(f"serial {serial:x}\n")
    auth.revocations.reload()
    assert isinstance(auth.agent(auth_context(certs, WEST), "west-1"), AuthDenied)
    assert isinstance(auth.agent(auth_context(certs, EAST), "east-1"), Peer)


@pytest.mark.parametrize(("identity", "metadata", "ok"), [
    (ADMIN, (), True),
    (None, (("authorization", "Bearer s3cret"),), True),
    (None, (("authorization", "Bearer wrong"),), False),
    (None, (("authorization", "Basic s3cret"),), False),
    (None, (), False),
    (EAST, (), False),
], ids=["user-cert", "token", "wrong-token", "not-bearer", "nothing", "cluster-cert"])
def test_the_job_api_takes_a_user_certificate_or_a_bearer_token(
        certs: CertsDir, identity: Identity | None, metadata: tuple[tuple[str, str], ...], ok: bool) -> None:
    result = Authenticator(tokens=["s3cret"]).user(auth_context(certs, identity), metadata)
    assert isinstance(result, Peer) is ok, result
    if not ok:
        assert isinstance(result, AuthDenied) and result.message


def test_insecure_mode_lets_everyone_in(certs: CertsDir) -> None:
    auth = Authenticator(insecure=True)
    assert isinstance(auth.agent(auth_context(certs, None), "anyone"), Peer)
    assert isinstance(auth.user(auth_context(certs, None), ()), Peer)
