"""Every write the federator (and its agent) makes names its own field manager (outside QA G7).

Before, the writes carried no fieldManager and the Python client's default User-Agent, so the API server recorded
the federator's fields (the finalizer, a MemberCluster's spec) as owned by "OpenAPI-Generator", as it would any
Python tool's; an SSA conflict and `--show-managed-fields` named no federator. The test bed test
(tests/kube/test_kube_gitops_testbed.py) reads the managedFields a real API server records.
"""

from __future__ import annotations

from typing import Any

from federator import __version__
from federator.backends.kube.api import AGENT_FIELD_MANAGER, FEDERATED_JOBS, KubeApi


class Answer:
    status = 200

    def read(self) -> bytes:
        return b"{}"


class Client:
    """The kubernetes ApiClient's two calls KubeApi uses, recording each request's method and query."""

    def __init__(self) -> None:
        self.user_agent = "OpenAPI-Generator/31.0.0/python"
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def param_serialize(self, method: str, path: str, *, query_params: list[tuple[str, Any]], **_: Any) -> tuple:
        self.sent.append((method, dict(query_params)))
        return method, path, {}, None, None

    def call_api(self, *_: Any, **__: Any) -> Answer:
        return Answer()


def test_every_write_names_the_federator_and_reads_do_not_need_to() -> None:
    client = Client()
    api = KubeApi(client)
    api.create(FEDERATED_JOBS, {}, "ns", strict=True)
    api.patch(FEDERATED_JOBS, "x", {}, "ns", subresource="status")
    api.replace(FEDERATED_JOBS, "x", {}, "ns")
    api.get(FEDERATED_JOBS, "x", "ns")
    assert client.user_agent == f"federator/{__version__}"  # the API server's default manager: "federator"
    assert client.sent == [("POST", {"fieldManager": "federator", "fieldValidation": "Strict"}),
                           ("PATCH", {"fieldManager": "federator"}), ("PUT", {"fieldManager": "federator"}),
                           ("GET", {})]


def test_the_agent_writes_as_federator_agent() -> None:
    client = Client()
    KubeApi(client, manager=AGENT_FIELD_MANAGER).patch(FEDERATED_JOBS, "x", {}, "ns")
    assert client.sent == [("PATCH", {"fieldManager": "federator-agent"})]
    assert client.user_agent.startswith("federator-agent/")
