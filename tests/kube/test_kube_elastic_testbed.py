"""A 2:4 elastic gang lands as 2 pods on a member with room for 2 (JobSpec.min_replicas, model/elastic.py).

Outside QA, ML platform E5: a gang torchrun could run on 2 to 4 nodes waited `GangDoesNotFit ... fits 2 of 4
replicas` on member-a's 2 x 8 H100, and the Job the agent made had backoffLimit 0. Now the FederatedJob with
spec.minReplicas 2 runs there at 2: the agent's Indexed Job has completions and parallelism 2, a backoffLimit that
lets pods be replaced, and tells torchrun PET_NNODES=2:4 over a c10d rendezvous; the real kube-scheduler binds the
2 pods to the 2 H100 nodes, and the FederatedJob's status says 2 of 4.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kube_support import JOBS_NAMESPACE, WORKLOADS, Kube
from one_member import MEMBER, fj_status, gang_job, one_member
from support import eventually

try:
    from tests.testbed.testbed import FAIL_ANNOTATION
except ImportError:  # kube_support put tests/testbed on sys.path
    from testbed import FAIL_ANNOTATION  # type: ignore[no-redef]

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    yield from one_member(tmp_path_factory, "kube-elastic", nodes=2)


def test_a_two_to_four_gang_runs_as_two_pods_where_two_fit(kube: Kube) -> None:
    kube.kubectl("host", "apply", "-f", "-", input=gang_job("ft", replicas=4, minReplicas=2))
    try:
        eventually(lambda: fj_status(kube, "ft").get("phase") == "Running", timeout=180,
                   what=lambda: f"ft Running\n{fj_status(kube, 'ft')}\n{kube.logs()}")
        status = fj_status(kube, "ft")
        assert (status["replicas"], status["replicasWaiting"]) == (2, 0), status  # placed at 2, owing nothing
        assert "elastic: 2/4 replicas placed" in status["message"], status
        # plain `kubectl get fj` shows the count placed beside what it holds (elasticqa63: ACCELERATORS 16 of a 2/4
        # gang read as a whole gang of 2 without -o wide)
        header, row = kube.kubectl("host", "get", "fj", "ft", "-n", JOBS_NAMESPACE).stdout.splitlines()[:2]
        starts = [header.index(name) for name in header.split()]  # by position: an empty HELD is blank
        shown = {header[a:b].strip(): row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)}
        assert (shown.get("PLACED"), shown.get("ACCELERATORS")) == ("2", "16"), (header, row)
        (job,) = kube.member_jobs(MEMBER)
        spec = job["spec"]
        assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (2, 2, 6)
        env = {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0]["env"]}
        assert (env["PET_NNODES"], env["NNODES"], env["PET_RDZV_BACKEND"]) == ("2:4", "2", "c10d")

        def bound() -> list[dict[str, Any]]:
            pods = kube.json(MEMBER, "get", "pods", "-n", WORKLOADS, "-l",
                             f"federator.io/placement-id={status['placementId']}")
            return [p for p in pods["items"] if p["spec"].get("nodeName")]

        eventually(lambda: len(bound()) == 2, timeout=120, what=lambda: f"2 pods bound\n{kube.logs()}")
        assert sorted(p["spec"]["nodeName"] for p in bound()) == [f"{MEMBER}-h100-0", f"{MEMBER}-h100-1"]
        # torchrun's c10d store starts where the endpoint's host is the pod's own hostname or the canonical name
        # the kubelet's /etc/hosts gives it, <hostname>.<subdomain>.<namespace>.svc.<domain> (elasticqa63 2):
        # the endpoint is pod 0's, as the member made it, and its Service answers for it
        (pod0,) = [p for p in bound() if p["metadata"]["annotations"].get(
            "batch.kubernetes.io/job-completion-index") == "0"]
        fqdn = (f"{pod0['spec']['hostname']}.{pod0['spec']['subdomain']}.{pod0['metadata']['namespace']}"
                f".svc.cluster.local")
        assert env["PET_RDZV_ENDPOINT"] == f"{fqdn}:29500", env
        assert kube.json(MEMBER, "get", "service", "-n", WORKLOADS, pod0["spec"]["subdomain"])["spec"][
            "clusterIP"] == "None"
    finally:
        kube.kubectl("host", "delete", "fj", "ft", "--wait=false", check=False)


def test_an_elastic_gang_whose_replicas_all_crash_at_start_fails_early_not_after_minutes(kube: Kube) -> None:
    """elasticqa63 6: every pod of a 2:3 gang failed at once (kwok's fail annotation, exit 1); its Job retried them
    on its backoff for 7 minutes, reading Running on 16 H100, then failed past the early-failure window, for good.
    Now the agent ends the placement Failed once both replicas have failed at its start, deletes the Job, and the
    federator's early-failure rule queues it once more, as a whole gang's crash (the Job alone would still be
    waiting out its backoff: its first retry comes 10 s after a failure, doubling, 6 in all)."""
    job = yaml.safe_load(gang_job("crash", replicas=3, minReplicas=2, run="2s"))
    job["spec"]["template"]["metadata"]["annotations"][FAIL_ANNOTATION] = "true"
    kube.kubectl("host", "apply", "-f", "-", input=yaml.safe_dump(job))
    try:
        def early() -> bool:
            status = fj_status(kube, "crash")
            return int(status.get("restarts") or 0) >= 1 and "failed on member-a" in str(status.get("message"))

        # 150 s: the Job's own retries would still run by then (10 s, 20 s, 40 s, 80 s after the failures)
        eventually(early, timeout=150, what=lambda: f"crash failed early\n{fj_status(kube, 'crash')}\n"
                                                    f"{kube.member_jobs(MEMBER)}\n{kube.logs()}")
        message = str(fj_status(kube, "crash")["message"])
        assert "all 2 replicas failed within 300s of the start" in message, message
        assert "exited with code 1" in message, message  # the first pod's own words, not only the count
    finally:
        kube.kubectl("host", "delete", "fj", "crash", "--wait=false", check=False)
