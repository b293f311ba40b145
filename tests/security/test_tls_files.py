"""TLS files gRPC would take and then fail with are refused when read, naming the flag and the file.

Before, a garbage --ca made the federator say "--listen: cannot bind", an agent retry its handshake for
ever, and the CLI say "failed to connect"; a certificate with another identity's key got as far as the
handshake.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.security.pki import CertsDir, Identity, IdentityKind
from federator.security.tls import TlsError, TlsFiles, server_files, user_files

EAST = Identity(IdentityKind.CLUSTER, "east-1")


def test_a_good_set_is_read(certs: CertsDir) -> None:
    ca, cert, key = user_files(certs).read()
    assert ca.startswith(b"-----BEGIN CERTIFICATE") and cert and key
    assert server_files(certs).server_credentials() is not None
    assert TlsFiles(certs.ca_cert).channel_credentials() is not None  # a token client: the CA alone


def test_garbage_is_refused_naming_the_flag_and_the_file(certs: CertsDir, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    admin = user_files(certs)
    cases = [
        (TlsFiles(junk, admin.cert, admin.key), f"--ca: {junk}: not a PEM certificate"),
        (TlsFiles(certs.ca_cert, junk, admin.key), f"--cert: {junk}: not a PEM certificate"),
        (TlsFiles(certs.ca_cert, admin.cert, junk), f"--key: {junk}: not a PEM private key without a passphrase"),
        (TlsFiles(certs.ca_cert, admin.key, admin.cert), f"--cert: {admin.key}: not a PEM certificate"),
    ]
    for files, said in cases:
        with pytest.raises(TlsError) as err:
            files.channel_credentials()
        assert str(err.value) == said


def test_a_certificate_with_another_identitys_key_is_refused(certs: CertsDir) -> None:
    admin, east, server = user_files(certs), TlsFiles.from_dir(certs, EAST), server_files(certs)
    with pytest.raises(TlsError) as err:
        TlsFiles(certs.ca_cert, admin.cert, east.key).channel_credentials()
    assert str(err.value) == f"--key: {east.key} is not the key of the certificate in {admin.cert} (--cert)"
    with pytest.raises(TlsError, match=r"--key: .* is not the key of the certificate in .*server\.crt"):
        TlsFiles(certs.ca_cert, server.cert, admin.key).server_credentials()
