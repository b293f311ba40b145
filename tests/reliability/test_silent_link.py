"""A link that goes silent (TCP up, nothing forwarded) is noticed within the lease, and the old copy is fenced.

Found by running the product as a black box: behind a proxy that stopped
forwarding, the agent noticed only after ~70 s (`Stream removed (ping
timeout)`), not the 15 s the docs promised, and a job's old copy ran ~46 s
beside its replacement even with --fence-after 7. Now the federator sends
something at least every heartbeat interval and the agent gives a stream up
after a lease without a message; --fence-after counts time without a message,
not time disconnected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest
from reliability_support import cluster_state, job, jobs_by_name

from federator.cli.submit_calls import submit_specs
from federator.local import LocalFederation
from federator.model import JobPhase

from fault_proxy import proxy_to
from support import eventually

pytestmark = pytest.mark.e2e
LEASE = 1.0
TICK = 0.25  # the agent checks its stream every quarter second


def at(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


def test_a_silent_link_is_noticed_within_the_lease_and_the_old_copy_stops_before_its_replacement_starts(
        federation_factory: Callable[..., LocalFederation]) -> None:
    fed = federation_factory("--lease-seconds", str(LEASE), "--lost-after", "6", agents=())
    with proxy_to(fed.grpc_target) as proxy:
        fed.start_agent("a-1", "--fence-after", "3", server=proxy.address)
        eventually(lambda: cluster_state(fed, "a-1") == "Ready", what="a-1 through the proxy")
        submit_specs(fed.client, [job("quiet", duration="60s")])
        first = eventually(lambda: (j := jobs_by_name(fed)["quiet"]).phase is JobPhase.RUNNING and j,
                           what="the job to run on a-1")
        old = first.placements[0].placement_id
        fed.start_agent("b-1")
        eventually(lambda: cluster_state(fed, "b-1") == "Ready", what="b-1")

        silenced = datetime.now()
        proxy.silence()  # every connection stays open; nothing gets through, either way
        moved = eventually(lambda: (j := jobs_by_name(fed)["quiet"]).phase is JobPhase.RUNNING
                           and j.placements[0].cluster == "b-1" and j, timeout=60,
                           what="the job re-placed on b-1 after a-1 is Lost")
        a_log = (fed.workdir / "agent-a-1.log").read_text().splitlines()
    noticed = next(line for line in a_log if "no message from the federator for" in line and at(line) >= silenced)
    silent_for = float(re.search(r"for ([0-9.]+)s", noticed).group(1))  # type: ignore[union-attr]
    assert LEASE <= silent_for <= LEASE + 2 * TICK, noticed  # the agent's own measure (to 0.1 s): the lease
    print(f"noticed {(at(noticed) - silenced).total_seconds():.2f}s after the link went silent "
          f"(lease {LEASE}s): {noticed}")
    fenced = at(next(line for line in a_log if f"fenced: stopping placement {old}" in line))
    started = at(next(line for line in (fed.workdir / "agent-b-1.log").read_text().splitlines()
                      if f"launched placement {moved.placements[0].placement_id}" in line))
    assert fenced < started, (fenced, started)  # never two copies at once
