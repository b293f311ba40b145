"""A Launch tells a provider what to run and for which queue, not who submitted it: the owner the federator
records (federator.io/user and federator.io/groups) stays with the federator, which accounts and authorises by it.
Nor what the job waited on (spec.depends_on, met before the launch): an agent before 0.15.0 refused every launch of
an `afternotok` job as malformed (outside upgrade QA U1)."""

from __future__ import annotations

from dataclasses import replace

from server_support import spec

from federator.api import convert
from federator.model import Placement, PlacementId
from federator.model.dependency import DEPENDS_ON_ANNOTATION, Condition, JobDependency
from federator.security.authz import GROUPS_ANNOTATION, USER_ANNOTATION, Principal, stamp_owner
from federator.server.order_messages import order_to_pb
from federator.server.orders import LaunchOrder
from federator.server.terms import StreamTerms


def test_a_launch_carries_the_jobs_own_annotations_but_not_its_owner() -> None:
    owned = stamp_owner(replace(spec("train"), annotations=(("team.example/cost-centre", "42"),)),
                        Principal("alice", frozenset({"team-a"}), claimed=frozenset({"team-a"})))
    assert owned.annotation(USER_ANNOTATION) == "alice" and owned.annotation(GROUPS_ANNOTATION) == "team-a"
    placement = Placement(placement_id=PlacementId("train-1.g1.east-1"), job_id=owned.name, cluster="east-1",
                          region="r", replicas=1, accelerator_model="H100", generation=1)
    message = order_to_pb(LaunchOrder(placement, owned), StreamTerms(5.0, 10.0, 60.0, 30.0), "east-1")
    annotations = dict(message.launch.spec.annotations)
    assert annotations == {"team.example/cost-centre": "42"}
    assert message.launch.spec.name == "train" and message.launch.placement.placement_id == "train-1.g1.east-1"


def test_a_launch_carries_no_dependency_so_an_agent_before_0_15_reads_an_afternotok_job() -> None:
    waiting = replace(spec("clean-up"), annotations=(
        (DEPENDS_ON_ANNOTATION, JobDependency(Condition.AFTER_NOT_OK, ("victim-1a2b3c",)).annotation()),
        ("team.example/cost-centre", "42")))
    assert waiting.depends_on is not None and waiting.depends_on.condition is Condition.AFTER_NOT_OK
    placement = Placement(placement_id=PlacementId("clean-up-1.g1.west-1"), job_id=waiting.name, cluster="west-1",
                          region="r", replicas=1, accelerator_model="H100", generation=1)
    launch = order_to_pb(LaunchOrder(placement, waiting), StreamTerms(5.0, 10.0, 60.0, 30.0), "west-1").launch
    # 0.14.0's agent (api/convert.py, _annotations_from_pb) refused a launch whose spec.depends_on.condition was
    # neither afterok nor afterany: "malformed launch: spec.dependsOn.condition: must be afterok or afterany"
    assert not launch.spec.HasField("depends_on")
    assert dict(launch.spec.annotations) == {"team.example/cost-centre": "42"}
    assert convert.spec_from_pb(launch.spec).depends_on is None  # what this release's agent reads
