"""Fakes of the Kubernetes API server for unit tests (importable as `kube_fakes`)."""

from __future__ import annotations

import copy
from typing import Any

from federator.backends.kube.api import KubeError, NotFoundError


class FlakyApi:
    """FederatedJobs in memory behind an API server that can be away (`away`: the error every request meets)."""

    server = "https://host.invalid"

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.away: KubeError | None = None
        self.writes = 0

    def _reach(self) -> None:
        if self.away is not None:
            raise self.away

    def list(self, res: Any, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        self._reach()
        return {"metadata": {"resourceVersion": "1"}, "items": copy.deepcopy(list(self.objects.values()))}

    def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        self._reach()
        if (str(namespace), name) not in self.objects:
            raise NotFoundError(404, f"{name} not found")
        return copy.deepcopy(self.objects[(str(namespace), name)])

    def create(self, res: Any, body: dict[str, Any], namespace: str | None = None, *,
               strict: bool = False) -> dict[str, Any]:
        self._reach()
        obj = copy.deepcopy(body)
        obj["metadata"].update(namespace=namespace, uid=f"uid-{len(self.objects)}", generation=1,
                               resourceVersion="1")
        self.objects[(str(namespace), obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None, *,
              subresource: str | None = None) -> dict[str, Any]:
        self._reach()
        obj = self.objects[(str(namespace), name)]
        if subresource == "status":
            obj["status"] = body["status"]
        else:
            obj["metadata"].update(body.get("metadata") or {})
        self.writes += 1
        return copy.deepcopy(obj)
