"""A federation's certificates for the security tests that need no processes: the CA, the federator, the
admin user, and clusters east-1 and west-1."""

from __future__ import annotations

import pytest

from federator.security.pki import CertsDir, Identity, IdentityKind, init_ca, issue


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertsDir:
    c = CertsDir(tmp_path_factory.mktemp("certs"))
    init_ca(c)
    issue(c, Identity(IdentityKind.CLUSTER, "east-1"))
    issue(c, Identity(IdentityKind.CLUSTER, "west-1"))
    return c
