"""The finalizer federator.io/queue-in-use (backends/kube/queue_controller.py): on every Queue, and off a deleted one
once no unfinished job names its queue (outside QA G5: a prune lifted the quota at once). The API server's part
(the deleted Queue staying, its quota in force) is tests/kube/test_kube_queue_quotas.py's, on the test bed."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from federator.backends.kube.api import ForbiddenError
from federator.backends.kube.queue_controller import QueueController
from federator.backends.kube.queues import IN_USE, QueueUsage
from federator.server.federator import Federator
from federator.store import SqliteJobStore


class PatchApi:
    server = "https://host.invalid"

    def __init__(self, refuse: bool = False) -> None:
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.refuse = refuse

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        if self.refuse:
            raise ForbiddenError(403, 'queues.federator.io "x" is forbidden', reason="Forbidden")
        self.patches.append((name, body))
        return {}


def _queue(name: str, *, finalizers: list[str] | None = None, deleted: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "resourceVersion": "7",
                            "finalizers": finalizers or []}
    if deleted:
        meta["deletionTimestamp"] = "2026-12-06T11:00:00Z"
    return {"apiVersion": "federator.io/v1alpha1", "kind": "Queue", "metadata": meta, "spec": {"weight": 1}}


def test_a_queue_gets_the_finalizer_and_a_deleted_one_loses_it_once_its_jobs_have_ended(tmp_path: Path) -> None:
    api = PatchApi()
    ctl = QueueController(Federator(store=SqliteJobStore(tmp_path / "db")), api)  # type: ignore[arg-type]
    objects = [_queue("new", finalizers=["team.example/keep"]),
               _queue("held", finalizers=[IN_USE], deleted=True),
               _queue("done", finalizers=["team.example/keep", IN_USE], deleted=True),
               _queue("kept", finalizers=[IN_USE])]
    asyncio.run(ctl.hold(objects, {"held": QueueUsage(pending_jobs=1), "kept": QueueUsage(running_jobs=2)}))
    assert api.patches == [
        ("new", {"metadata": {"finalizers": ["team.example/keep", IN_USE], "resourceVersion": "7"}}),
        ("done", {"metadata": {"finalizers": ["team.example/keep"], "resourceVersion": "7"}}),
    ]


def test_a_finalizer_the_api_server_refuses_is_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An old Role without patch on queues: the Queue goes at once when deleted, as before, and a WARNING says
    so, once, not at every status round."""
    ctl = QueueController(Federator(store=SqliteJobStore(tmp_path / "db")), PatchApi(refuse=True))  # type: ignore[arg-type]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="federator.kube.queues"):
        for _ in range(3):
            asyncio.run(ctl.hold([_queue("research")], {}))
    [said] = [r.getMessage() for r in caplog.records if r.name == "federator.kube.queues"]
    assert said.startswith(f"Queue research: finalizer {IN_USE} not written (HTTP 403 Forbidden")
    assert "grant the federator patch on queues" in said
