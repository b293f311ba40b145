"""One member's test bed and federation for a test-bed module: member-a with N x 8 H100 and its agent, the
federator on the host; and the few reads of one gang that the
restore and restart tests make (its FederatedJob's status, its Jobs on member-a).

Five modules (the restore, re-apply, silent-cancel and reservation-restart tests) each wrote this fixture and these
reads out line for line (review59 R4, `duplicates` D1/D2/D9/D10); a module's `kube` fixture is now
`yield from one_member(tmp_path_factory, "its-name", ...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from kube_support import JOBS_NAMESPACE, Kube, federation, own_bed

try:
    from tests.testbed.testbed import DELAY_ANNOTATION, H100, gpu_nodes
except ImportError:  # kube_support put tests/testbed on sys.path
    from testbed import DELAY_ANNOTATION, H100, gpu_nodes  # type: ignore[no-redef]

MEMBER = "member-a"


def one_member(tmp_path_factory: Any, name: str, *serve_args: str, nodes: int = 2,
               watch: str | None = JOBS_NAMESPACE) -> Iterator[Kube]:
    """A module's own test bed (MEMBER with `nodes` x 8 H100) and `federation` on it with `serve_args` (LEASE_TIMES
    for a test that SIGKILLs or restarts the federator); `watch` None: every namespace. A generator for a module
    fixture to `yield from`; everything is stopped when it closes."""
    work = tmp_path_factory.mktemp(name)
    (work / "federation").mkdir()
    with own_bed(work / "bed", members=(MEMBER,), nodes={MEMBER: gpu_nodes(f"{MEMBER}-h100", H100, nodes, 8)}) \
            as bed, federation(bed, work / "federation", *serve_args, watch=watch) as k:
        yield k


def gang_job(name: str, *, replicas: int = 2, run: str = "3600s", namespace: str = JOBS_NAMESPACE,
         **spec: Any) -> str:
    """A training FederatedJob of `replicas` x 8 H100 whose pods kwok runs for `run`, for `kubectl apply -f -`;
    `spec`'s fields (held, queue) over that."""
    return yaml.safe_dump({
        "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"kind": "training", "replicas": replicas, **spec,
                 "resources": {"nvidia.com/gpu": 8, "cpu": "1"}, "acceleratorModels": ["H100"],
                 "template": {"metadata": {"annotations": {DELAY_ANNOTATION: run}}}}})


def fj_status(kube: Kube, name: str, namespace: str = JOBS_NAMESPACE) -> dict[str, Any]:
    """The FederatedJob's status ({} while it has none or is gone)."""
    return dict((kube.fj(name, namespace) or {}).get("status") or {})


def member_jobs(kube: Kube) -> list[str]:
    """The names of the Jobs on MEMBER, sorted: a gang's run, to see it neither cancelled nor launched again."""
    return sorted(j["metadata"]["name"] for j in kube.member_jobs(MEMBER))
