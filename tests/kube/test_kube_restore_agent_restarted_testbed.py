"""An agent restarted between the snapshot a host's state is restored from and the restore still says the ends its
member shows: a gang that finished while no agent ran, its Job kept on the member (ttlSecondsAfterFinished, an hour
by default), is read back by the new agent at its start and said at every re-sync, so the restored job (Running
again) is marked Succeeded, not run again (docs/kubernetes.md, "What a restore does to each job").

Real processes on the test bed: member-a (2 x 8 H100), its agent stopped while the gang ends and started anew.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import pytest

from kube_support import JOBS_NAMESPACE, LEASE_TIMES, Kube
from one_member import fj_status, gang_job, member_jobs, one_member
from support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]

NAME = "ended-while-restarted"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    yield from one_member(tmp_path_factory, "restore-agent-restarted", *LEASE_TIMES)


def _finished(kube: Kube) -> bool:
    jobs = kube.member_jobs("member-a")
    return bool(jobs) and all(any(c.get("type") == "Complete" and c.get("status") == "True"
                                  for c in (j.get("status") or {}).get("conditions") or []) for j in jobs)


def test_a_gang_that_ended_while_its_agent_restarted_is_not_run_again_after_a_restore(kube: Kube) -> None:
    eventually(lambda: (kube.json("host", "get", "mc", "member-a").get("status") or {}).get("state") == "Ready",
               timeout=120, what=lambda: f"member-a Ready\n{kube.logs()}")
    kube.kubectl("host", "apply", "-f", "-", input=gang_job(NAME, run="20s"))
    snapshot = eventually(lambda: (s := fj_status(kube, NAME)).get("phase") == "Running" and s, timeout=120,
                          what=lambda: f"{NAME} Running\n{kube.logs()}")
    gang = member_jobs(kube)
    assert len(gang) == 1

    agent = kube.fed.agents["member-a"]
    kubeconfig = kube.workdir / "agent-member-a.kubeconfig"
    agent.stop(signal.SIGTERM)  # the agent goes; its memory of ends with it
    eventually(lambda: _finished(kube), timeout=120, what=lambda: f"the gang finished\n{kube.logs()}")
    kube.fed.start_kube_agent("member-a", kubeconfig=kubeconfig, region="east")  # a new process
    eventually(lambda: kube.phase(NAME) == "Succeeded", timeout=120,
               what=lambda: f"{NAME} Succeeded\n{fj_status(kube, NAME)}\n{kube.logs()}")

    kube.fed.server.stop(signal.SIGTERM)  # type: ignore[union-attr]
    # the restore: the object's status as the snapshot had it (Running on its placement)
    kube.kubectl("host", "patch", "fj", NAME, "-n", JOBS_NAMESPACE, "--subresource=status", "--type=json", "-p",
                 json.dumps([{"op": "replace", "path": "/status", "value": snapshot}]))
    assert kube.phase(NAME) == "Running"
    kube.fed.start_server(timeout=120)
    eventually(lambda: kube.phase(NAME) == "Succeeded", timeout=120,
               what=lambda: f"{NAME} Succeeded after the restore\n{fj_status(kube, NAME)}\n{kube.logs()}")
    assert member_jobs(kube) == gang  # not run again
