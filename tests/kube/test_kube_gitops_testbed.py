"""A FederatedJob kept by a GitOps tool (server-side apply as Argo CD / Flux do), against a real API server.

Outside QA (GitOps round):
- G4: a scale the federator refused was "set back" by the federator writing spec.replicas: the next SSA apply of
  the count in Git was a conflict, with --force-conflicts a new generation and a new Warning Event, for ever. Now
  spec.replicas stays as applied, the status says the refusal (Accepted=False, observedGeneration), and a
  restarted federator rebuilds the job at the count it accepted (status.accepted).
- G10: an annotation federator.io/master-port edited to "abc" on a placed job was taken without a word, and the
  next federator start failed the job for good and orphaned its workload. Now it is said (MetadataIgnored,
  Accepted=False) and not applied, and the job survives the restart as it was accepted.
- G7: the federator wrote as field manager "OpenAPI-Generator" (the Python client's default); now "federator".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from federator.backends.kube.api import FEDERATED_JOBS, KubeApi
from federator.backends.kube.controller import FederatedJobController
from federator.backends.kube.events import EventRecorder
from federator.backends.kube.store import KubeJobStore
from federator.model import JobPhase
from federator.server.federator import Federator

from builders import cluster, pool
from kube_support import H100, Testbed, host_alone
from support import accepted, until

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

NAMESPACE = "gitops"
ARGO = ("--server-side", "--field-manager=argocd-controller")


def document(name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if annotations:
        meta["annotations"] = annotations
    return yaml.safe_dump({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob", "metadata": meta,
                           "spec": spec})


CHAT = {"kind": "inference", "replicas": 2, "resources": {"cpu": "1"}}
TRAIN = {"kind": "training", "replicas": 2, "resources": {"cpu": "1", "nvidia.com/gpu": 1}}
PORT = "federator.io/master-port"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    with host_alone(tmp_path_factory.mktemp("gitops-bed"), NAMESPACE) as bed:
        yield bed


def test_a_gitops_kept_federatedjob_is_never_written_over_nor_failed_by_a_restart(host: Testbed) -> None:
    api = KubeApi.connect(host.host.kubeconfig)

    def obj(name: str) -> dict[str, Any]:
        return api.get(FEDERATED_JOBS, name, NAMESPACE)

    def accepted_condition(name: str) -> dict[str, Any]:
        return next((c for c in obj(name).get("status", {}).get("conditions", []) if c["type"] == "Accepted"), {})

    def events(name: str, reason: str) -> list[str]:
        listed = host.kubectl_json("host", "get", "events", "-n", NAMESPACE,
                                   "--field-selector", f"involvedObject.name={name},reason={reason}")
        return [e["message"] for e in listed["items"]]

    def apply(text: str) -> None:
        host.kubectl("host", "apply", *ARGO, "-f", "-", input=text)  # a conflict would raise

    async def federator() -> tuple[KubeJobStore, Federator, FederatedJobController]:
        store = KubeJobStore(api, namespace=NAMESPACE, events=EventRecorder(api))
        fed = Federator(store=store)
        ctl = FederatedJobController(fed, api, store, namespace=NAMESPACE)
        await ctl.start()
        rec = fed.connect(cluster="member-a", region="east", labels={})
        fed.report(rec, cluster("member-a", "east", pool(H100, nodes=2, free=8)).capacity)
        return store, fed, ctl

    async def main() -> None:
        store, fed, ctl = await federator()
        try:
            apply(document("chat", CHAT))
            host.kubectl("host", "apply", "-f", "-", input=document("mp", TRAIN, {PORT: "29600"}))
            await accepted(fed, NAMESPACE, "chat", "mp")
            fed.schedule_once()
            await until(lambda: obj("mp").get("status", {}).get("phase") == "Placed")

            # G7: every field the federator wrote is its own, by name.
            managers = {m["manager"] for m in obj("mp")["metadata"]["managedFields"]}
            assert "federator" in managers and "OpenAPI-Generator" not in managers, managers

            # G4: Git says 10000 (over --max-replicas, 1000): refused, said, and left as applied.
            apply(document("chat", {**CHAT, "replicas": 10000}))
            await until(lambda: accepted_condition("chat").get("observedGeneration") == 2)
            cond = accepted_condition("chat")
            assert (cond["status"], cond["reason"]) == ("False", "ScaleRefused"), cond
            assert obj("chat")["spec"]["replicas"] == 10000 and obj("chat")["metadata"]["generation"] == 2
            # The next sync is no conflict and no change: nobody but the GitOps tool owns spec.replicas.
            apply(document("chat", {**CHAT, "replicas": 10000}))
            assert obj("chat")["metadata"]["generation"] == 2

            # G10: the master port edited to "abc" on the placed job: said, not applied.
            host.kubectl("host", "annotate", "fj", "mp", "-n", NAMESPACE, "--overwrite", f"{PORT}=abc")
            await until(lambda: accepted_condition("mp").get("reason") == "MetadataIgnored")
            (job,) = fed.jobs.named("mp")
            assert job.spec.annotation(PORT) == "29600" and job.phase is JobPhase.PLACED
        finally:
            await ctl.stop()
            store.close()

        # A restart (an upgrade, a failover): both jobs rebuilt as accepted, nothing failed, nothing said again.
        store, fed, ctl = await federator()
        try:
            (mp,) = fed.jobs.named("mp")
            (chat,) = fed.jobs.named("chat")
            assert mp.job_id == job.job_id and mp.phase is JobPhase.PLACED and mp.spec.annotation(PORT) == "29600"
            assert chat.spec.replicas == 2 and not chat.phase.is_terminal
            await until(lambda: len(store.ignoring) == 2)  # both objects judged again by this federator
            assert obj("mp")["status"]["phase"] == "Placed" and obj("chat")["spec"]["replicas"] == 10000

            # Git goes back to a count the federator takes: scaled, and Accepted again.
            apply(document("chat", {**CHAT, "replicas": 3}))
            await until(lambda: accepted_condition("chat").get("status") == "True")
            assert chat.spec.replicas == 3
        finally:
            await ctl.stop()
            store.close()  # its Events posted
        (said,) = events("mp", "MetadataIgnored")  # once, by the first federator
        assert "must be a port number from 1 to 65535, got 'abc'" in said
        assert len(events("chat", "ScaleRefused")) == 1

    asyncio.run(main())
