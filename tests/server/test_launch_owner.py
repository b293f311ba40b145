"""A Launch tells a provider what to run and for which queue, not who submitted it: the owner the federator
records (federator.io/user and federator.io/groups) stays with the federator, which accounts and authorises by it."""

from __future__ import annotations

from dataclasses import replace

from server_support import spec

from federator.model import Placement, PlacementId
from federator.security.authz import GROUPS_ANNOTATION, USER_ANNOTATION, Principal, stamp_owner
from federator.server.agent_service import _order_to_pb
from federator.server.orders import LaunchOrder
from federator.server.terms import StreamTerms


def test_a_launch_carries_the_jobs_own_annotations_but_not_its_owner() -> None:
    owned = stamp_owner(replace(spec("train"), annotations=(("team.example/cost-centre", "42"),)),
                        Principal("alice", frozenset({"team-a"}), claimed=frozenset({"team-a"})))
    assert owned.annotation(USER_ANNOTATION) == "alice" and owned.annotation(GROUPS_ANNOTATION) == "team-a"
    placement = Placement(placement_id=PlacementId("train-1.g1.east-1"), job_id=owned.name, cluster="east-1",
                          region="r", replicas=1, accelerator_model="H100", generation=1)
    message = _order_to_pb(LaunchOrder(placement, owned), StreamTerms(5.0, 10.0, 60.0, 30.0))
    annotations = dict(message.launch.spec.annotations)
    assert annotations == {"team.example/cost-centre": "42"}
    assert message.launch.spec.name == "train" and message.launch.placement.placement_id == "train-1.g1.east-1"
