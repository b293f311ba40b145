"""`federator certs issue --users-from FILE` (cli/user_batch.py): an organisation's users issued in one run, each
pair where `--user` puts it with the groups of its line and of --group; any bad line refuses the batch before
anything is written, naming the line; a user already issued refuses it unless --renew."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from federator.cli import main
from federator.security.pki import CertsDir, identity_of, init_ca, load_cert


@pytest.fixture
def certs(tmp_path: Path) -> CertsDir:
    c = CertsDir(tmp_path / "certs")
    init_ca(c)
    return c


def _issued(certs: CertsDir) -> list[str]:
    return sorted(p.stem for p in (certs.root / "users").glob("*.crt") if p.stem != "admin")


def _groups(certs: CertsDir, user: str) -> list[str]:
    cert = load_cert(certs.root / "users" / f"{user}.crt")
    return sorted(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))


def test_every_user_of_a_text_file_is_issued_with_its_groups(certs: CertsDir, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    users = tmp_path / "org-0005.txt"
    users.write_text("# org-0005's people\nu-0005\nu-0105, org-0005-admins   # the org's admin\n\nu-0205\n")
    assert main(["certs", "issue", "--dir", str(certs.root), "--users-from", str(users), "--group", "org-0005"]) == 0
    assert "issued 3 user certificates" in capsys.readouterr().out
    assert _issued(certs) == ["u-0005", "u-0105", "u-0205"]
    assert _groups(certs, "u-0105") == ["org-0005", "org-0005-admins"]
    assert _groups(certs, "u-0005") == ["org-0005"]
    cert = load_cert(certs.root / "users" / "u-0205.crt")
    assert identity_of(cert) is not None and identity_of(cert).name == "u-0205"  # type: ignore[union-attr]
    assert (certs.root / "users" / "u-0205.key").exists()


def test_a_yaml_file_is_read_too(certs: CertsDir, tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    users.write_text("- {name: u-1, groups: [org-1]}\n- {name: u-2}\n")
    assert main(["certs", "issue", "--dir", str(certs.root), "--users-from", str(users)]) == 0
    assert _issued(certs) == ["u-1", "u-2"] and _groups(certs, "u-1") == ["org-1"]


def test_any_bad_line_refuses_the_whole_batch_before_anything_is_written_naming_each_line(
        certs: CertsDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = tmp_path / "users.txt"
    users.write_text("u-0001\nu-0002,org-a\nBob\nu-0004,Org_B\nu-0001\n")
    assert main(["certs", "issue", "--dir", str(certs.root), "--users-from", str(users)]) == 1
    err = capsys.readouterr().err
    assert "nothing issued; 3 problems" in err
    assert f"{users}:3: user: must be a lower-case DNS name" in err and "'Bob'" in err
    assert f"{users}:4: group: must be a lower-case DNS name" in err and "'Org_B'" in err
    assert f"{users}:5: user 'u-0001' again (first at {users}:1)" in err
    assert _issued(certs) == []


def test_a_user_already_issued_refuses_the_batch_unless_renew(certs: CertsDir, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    users = tmp_path / "users.txt"
    users.write_text("u-0001\n")
    assert main(["certs", "issue", "--dir", str(certs.root), "--users-from", str(users)]) == 0
    before = (certs.root / "users" / "u-0001.crt").read_bytes()
    users.write_text("u-0002\nu-0001\n")
    assert main(["certs", "issue", "--dir", str(certs.root), "--users-from", str(users)]) == 1
    assert f"{users}:2: user 'u-0001' already has a certificate" in capsys.readouterr().err
    assert _issued(certs) == ["u-0001"] and (certs.root / "users" / "u-0001.crt").read_bytes() == before
    assert main(["certs", "issue", "--dir", str(certs.root), "--users-from", str(users), "--renew"]) == 0
    assert _issued(certs) == ["u-0001", "u-0002"] and (certs.root / "users" / "u-0001.crt").read_bytes() != before


def test_renew_alone_and_an_empty_file_are_refused(certs: CertsDir, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "issue", "--dir", str(certs.root), "--user", "u-1", "--renew"]) == 2
    assert "--renew: goes with --users-from" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody yet\n")
    assert main(["certs", "issue", "--dir", str(certs.root), "--users-from", str(empty)]) == 1
    assert "names no user" in capsys.readouterr().err
