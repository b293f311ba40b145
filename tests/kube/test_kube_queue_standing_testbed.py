"""`federator get queues` in Kubernetes mode: Queue objects are the declared queues, and their standing reads as in
standalone mode, as /metrics graphs it and as the Queue's own status counts it (outside QA, HPC H11)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kube_support import Kube, h100_job_yaml, queue_yaml
from support import eventually, federator_cli, scraped

pytestmark = [pytest.mark.kube, pytest.mark.timeout(600)]


def _standing(kube: Kube, queue: str) -> dict[str, Any]:
    """`federator get queues QUEUE -o json` as a user runs it ({} until the queue is listed)."""
    out = federator_cli("get", "queues", queue, "-o", "json", *kube.fed.client_args())
    return json.loads(out.stdout) if out.returncode == 0 else {}


def test_a_queue_objects_standing_is_the_metrics_and_its_status(kube: Kube) -> None:
    busy, idle = "standing-busy", "standing-idle"
    kube.kubectl("host", "apply", "-f", "-", input=queue_yaml(busy, {"weight": 3, "quota": {"gpus": {"H100": 16}}}))
    kube.kubectl("host", "apply", "-f", "-", input=queue_yaml(idle, {"weight": 1}))
    try:
        kube.kubectl("host", "apply", "-f", "-", input=h100_job_yaml("standing-one", busy))
        eventually(lambda: _standing(kube, busy).get("runningJobs") == 1, timeout=120,
                   what=lambda: f"standing-one placed, as get queues says ({_standing(kube, busy)})\n{kube.logs()}")

        def agree() -> dict[str, Any]:
            """get queues and a scrape of /metrics read the same figures (retried: the fleet may still move)."""
            doc = _standing(kube, busy)
            url = kube.fed.metrics_url
            metrics = (scraped(url, "federator_queue_weight", queue=busy),
                       scraped(url, "federator_queue_accelerators", queue=busy),
                       scraped(url, "federator_queue_fair_share", queue=busy))
            return doc if doc and (doc["weight"], doc["heldAccelerators"], doc["fairShareAccelerators"]) == \
                metrics else {}

        doc = eventually(agree, timeout=60, what="get queues and /metrics agree")
        assert doc["declared"] and doc["weight"] == 3 and doc["heldAccelerators"] == 8
        assert doc["quota"]["accelerators"] == {"H100": 16}
        status = kube.json("host", "get", "queue", busy).get("status") or {}
        assert status.get("runningJobs") == doc["runningJobs"] == 1  # one name, one count
        assert doc["own"]["owner"] == "user anonymous"  # the test bed's federator is insecure: the caller is admin

        # a Queue with no work: declared, listed, and what it would get were it to ask now (as the metric says)
        quiet = _standing(kube, idle)
        assert (quiet["declared"], quiet["weight"], quiet["runningJobs"], quiet["pendingJobs"]) == (True, 1, 0, 0)
        assert quiet["fairShareAccelerators"] == scraped(kube.fed.metrics_url, "federator_queue_fair_share",
                                                         queue=idle)
        table = federator_cli("get", "queues", *kube.fed.client_args())
        assert table.returncode == 0, table.stderr
        assert {busy, idle} <= {line.split()[0] for line in table.stdout.splitlines()[1:]}
    finally:
        kube.kubectl("host", "delete", "fj", "standing-one", "--timeout=60s", "--ignore-not-found", check=False)
        kube.kubectl("host", "delete", "queue", busy, idle, "--ignore-not-found", check=False)
