"""A Queue object's quota on a model the accelerator catalog does not know (outside QA, new user F8): `kubectl get
fq` showed `Valid True` for `H1000: 64`, and the quota capped nothing. Now it is Valid False naming the field; and a
change that makes a valid Queue invalid keeps its last valid spec in force, as a bad reload keeps the good one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from federator.backends.kube.queue_controller import QueueController
from federator.backends.kube.queues import QueueUsage, queue_from_object, queue_status
from federator.scheduler import PolicyError, Scheduler, parse_policy
from federator.server.federator import Federator
from federator.store import SqliteJobStore

POLICY = "queues:\n  research: {quota: {accelerators: {H100: 4}}}\n"
TYPO = "spec.quota.accelerators.H1000: is not an accelerator model the catalog knows (did you mean H100?)"


def _queue(name: str, h100: str, n: int, *, generation: int = 1, uid: str = "") -> dict[str, Any]:
    return {"apiVersion": "federator.io/v1alpha1", "kind": "Queue",
            "metadata": {"name": name, "uid": uid or f"uid-{name}", "generation": generation},
            "spec": {"weight": 2, "quota": {"accelerators": {h100: n}}}}


class _NoApi:
    server = "https://host.invalid"


@pytest.fixture
def controller(tmp_path: Path) -> QueueController:
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), scheduler=Scheduler(parse_policy(POLICY)))
    return QueueController(fed, _NoApi())  # type: ignore[arg-type]


def _quota(ctl: QueueController, name: str) -> dict[str, int]:
    return dict(ctl.fed.scheduler.config.queue(name).quota.accelerator_milli)


def test_a_queue_object_quota_on_an_unknown_model_is_refused_naming_the_field() -> None:
    with pytest.raises(PolicyError) as err:
        queue_from_object(_queue("badq", "H1000", 64))
    assert str(err.value) == f"Queue badq: {TYPO}; a quota on it would cap nothing. A model of your own goes in " \
                             "the catalog extension (--accelerator-catalog, Helm value acceleratorCatalog)"


def test_a_new_queue_with_an_unknown_model_is_ignored_and_shows_valid_false(controller: QueueController) -> None:
    controller.apply([_queue("badq", "H1000", 64)])
    assert "badq" not in controller.fed.scheduler.config.queues  # defaultQueue's applies
    problem = controller.problems["badq"]
    assert TYPO in problem and "ignored: the queue is the policy file's" in problem
    (valid,) = queue_status(generation=1, problem=problem, usage=QueueUsage(), now=0.0)["conditions"]
    assert (valid["type"], valid["status"], valid["reason"]) == ("Valid", "False", "Invalid")
    assert TYPO in valid["message"]


def test_a_valid_queue_changed_to_an_unknown_model_keeps_its_last_valid_quota(controller: QueueController) -> None:
    controller.apply([_queue("research", "H100", 64)])
    assert _quota(controller, "research") == {"H100": 64_000}

    controller.apply([_queue("research", "H1000", 32, generation=2)])  # the operator's typo
    assert _quota(controller, "research") == {"H100": 64_000}  # still capped, not the file's 4 nor nothing
    problem = controller.problems["research"]
    assert TYPO in problem and "keeps this Queue's last valid spec (generation 1)" in problem

    controller.apply([_queue("research", "H100", 32, generation=3)])  # fixed
    assert _quota(controller, "research") == {"H100": 32_000}
    assert controller.problems == {}


def test_a_queue_deleted_and_made_again_invalid_does_not_inherit_the_old_ones_spec(
        controller: QueueController) -> None:
    controller.apply([_queue("research", "H100", 64)])
    controller.apply([_queue("research", "H1000", 64, uid="uid-new")])  # another object of that name
    assert _quota(controller, "research") == {"H100": 4_000}  # the policy file's
    assert "ignored" in controller.problems["research"]
    controller.apply([])
    assert controller.fed.scheduler.config == parse_policy(POLICY)


def test_any_invalid_change_keeps_the_last_valid_spec_not_only_a_models(controller: QueueController) -> None:
    controller.apply([_queue("research", "H100", 64)])
    broken = _queue("research", "H100", 8, generation=2)
    broken["spec"]["weight"] = 0
    controller.apply([broken])
    assert _quota(controller, "research") == {"H100": 64_000}
    assert controller.fed.scheduler.config.queue("research").weight == 2.0
    assert "spec.weight: must be a positive number" in controller.problems["research"]
