"""Which workload kinds a member cluster serves: API discovery for each adapter's group and version.

A kind is served when `GET /apis/<group>/<version>` lists its resource (its
CRD is installed; the built-in kinds always are). The agent advertises the
served kinds in every capacity report, so the federator sends a JobSet only
where JobSets run, and watches only the kinds it found.
"""

from __future__ import annotations

from federator.backends.kube.api import KubeApi, KubeError, NotFoundError, Resource
from federator.backends.kube.workloads import ADAPTERS, WorkloadAdapter


def resource_of(adapter: WorkloadAdapter) -> Resource:
    return Resource(adapter.api_version, adapter.plural)


def served_kinds(api: KubeApi) -> dict[str, WorkloadAdapter]:
    """"Kind.group" -> adapter for every adapter whose kind the cluster serves (blocking; run in a thread).

    A group the server does not know is absent (404); any other failure raises KubeError, so a flaky
    answer never takes a kind away."""
    lists: dict[str, set[str] | None] = {}
    out: dict[str, WorkloadAdapter] = {}
    for adapter in ADAPTERS:
        if adapter.api_version not in lists:
            try:
                answer = api.request("GET", f"/apis/{adapter.api_version}")
            except NotFoundError:
                lists[adapter.api_version] = None
            else:
                resources = answer.get("resources") if isinstance(answer, dict) else None
                if not isinstance(resources, list):
                    raise KubeError(0, f"GET /apis/{adapter.api_version}: not an APIResourceList")
                lists[adapter.api_version] = {str(r.get("name")) for r in resources if isinstance(r, dict)}
        names = lists[adapter.api_version]
        if names is not None and adapter.plural in names:
            out[adapter.key] = adapter
    return out


__all__ = ["resource_of", "served_kinds"]
