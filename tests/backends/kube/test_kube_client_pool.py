"""The Kubernetes client's connection pool has room for what shares it (QA kubescaleqa62 L1).

The client's default pool is 5 connections per CPU: 10 on the 2 CPUs of the QA's host, shared by the controller's
16 workers, the store's 8 status writers, Events, MemberClusters and the watches, and urllib3 said "Connection pool
is full, discarding connection" 100 times in 12 minutes (each a new TLS handshake at the next request)."""

from __future__ import annotations

from pathlib import Path

import yaml

from federator.backends.kube.api import POOL_CONNECTIONS, KubeApi
from federator.backends.kube.controller import WORKERS
from federator.backends.kube.store import WRITERS


def kubeconfig(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "host",
        "clusters": [{"name": "host",
                      "cluster": {"server": "https://127.0.0.1:49099", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "admin", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "host", "context": {"cluster": "host", "user": "admin"}}]}))
    return path


def test_the_clients_pool_holds_a_connection_for_each_worker_and_writer(tmp_path: Path) -> None:
    api = KubeApi.connect(kubeconfig(tmp_path / "kubeconfig"))
    try:
        pool = api._client.rest_client.pool_manager.connection_pool_kw["maxsize"]  # noqa: SLF001
        assert pool == POOL_CONNECTIONS
        assert pool >= WORKERS + WRITERS + 8  # and Events, MemberClusters, Leases, the watches
        assert api.server == "https://127.0.0.1:49099"  # the kubeconfig's server, as before
    finally:
        api.close()
