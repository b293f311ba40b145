"""The federator exports when the client certificate each cluster's agent presented expires
(federator_cluster_certificate_expiration_timestamp_seconds), over real mTLS between real processes.

Why: a refused handshake never reaches the federator's code (gRPC refuses the certificate in its C core), so a
cluster whose agent's certificate expired only went quiet. With the last certificate's date kept while the
cluster is away, FederatorClusterCertificateExpired says why on the federator's own Prometheus.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.local import LocalFederation
from federator.security import pki
from federator.security.pki import Identity, IdentityKind, init_ca, issue

from support import eventually, scraped

pytestmark = pytest.mark.e2e

FLEET = """
clusters:
  - {name: east-1, region: east, nodes: [{count: 1, cpu: 8, memory: 32Gi}]}
"""
EXPIRY = "federator_cluster_certificate_expiration_timestamp_seconds"


def test_the_certificate_an_agent_presented_is_exported_and_kept_while_it_is_away(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=fleet,
                          serve_args=["--report-interval", "0.3", "--cycle-interval", "0.2"])
    init_ca(fed.certs)
    cert = issue(fed.certs, Identity(IdentityKind.CLUSTER, "east-1"), days=3)  # its own date, not the default
    not_after = pki.load_cert(cert).not_valid_after_utc.timestamp()
    try:
        fed.start_server(timeout=60)
        assert scraped(fed.metrics_url, EXPIRY, cluster="east-1") is None  # no agent yet: no series
        agent = fed.start_agent("east-1", timeout=60)
        eventually(lambda: scraped(fed.metrics_url, "federator_cluster_connected", cluster="east-1") == 1.0,
                   timeout=60, what="east-1 connected")
        assert scraped(fed.metrics_url, EXPIRY, cluster="east-1", region="east") == not_after
        agent.stop()
        eventually(lambda: scraped(fed.metrics_url, "federator_cluster_connected", cluster="east-1") == 0.0,
                   timeout=60, what="east-1 disconnected")
        assert scraped(fed.metrics_url, EXPIRY, cluster="east-1") == not_after  # what the alert reads then
    finally:
        fed.stop()
