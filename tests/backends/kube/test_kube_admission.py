"""Gang admission on a member: Kueue mode's label/suspend and reasons, the gang timeout (pure parts)."""

from __future__ import annotations

from typing import Any

import pytest

from federator.backends.kube.admission import (
    KUEUE_QUEUE_LABEL,
    GangAdmission,
    is_suspended,
    kueue_admit,
    kueue_state,
    kueue_wait_message,
    unbound_gang,
)
from federator.backends.kube.gang import GangGuard


def _job() -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "labels": {"a": "b"}},
            "spec": {"parallelism": 2}}


def test_kueue_mode_labels_the_workload_and_suspends_the_kinds_that_can_be() -> None:
    job = kueue_admit(_job(), "team-a")
    assert job["metadata"]["labels"] == {"a": "b", KUEUE_QUEUE_LABEL: "team-a"}
    assert job["spec"]["suspend"] is True and is_suspended(job)
    pytorch = kueue_admit({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {}}, "q")
    assert pytorch["spec"]["runPolicy"]["suspend"] is True
    jobset = kueue_admit({"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "spec": {}}, "q")
    assert jobset["spec"]["suspend"] is True
    lws = kueue_admit({"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "spec": {}}, "q")
    assert lws["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "q" and "suspend" not in lws["spec"]
    assert kueue_admit(_job(), "") == _job()  # off: untouched


def test_kueue_reasons_are_read_from_the_workload_conditions() -> None:
    pending = {"status": {"conditions": [{"type": "QuotaReserved", "status": "False", "reason": "Pending",
                                          "message": "couldn't assign flavors to pod set main: insufficient quota "
                                                     "for nvidia.com/gpu in flavor a100, 8 more needed"}]}}
    assert kueue_state(pending)[0] == "Pending"
    message = kueue_wait_message("member-b", "lq", pending)
    assert message.startswith("waiting for Kueue admission on member-b: couldn't assign flavors")
    admitted = {"status": {"conditions": [
        {"type": "QuotaReserved", "status": "True", "message": "ok"},
        {"type": "Admitted", "status": "True", "message": "The workload is admitted"}]}}
    assert kueue_state(admitted) == ("Admitted", "The workload is admitted")
    evicted = {"status": {"conditions": [{"type": "Evicted", "status": "True", "message": "preempted"}]}}
    assert kueue_wait_message("m", "lq", evicted) == "evicted by Kueue on m: preempted"
    assert kueue_wait_message("m", "lq", None) == "waiting for Kueue admission on m: no Workload yet"


def _pod(node: str = "", phase: str = "Pending", why: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if why:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "message": why}]
    return {"spec": {"nodeName": node} if node else {}, "status": status}


def test_a_gang_is_whole_once_every_pod_is_bound() -> None:
    assert unbound_gang([_pod("n1", "Running"), _pod("n2", "Succeeded")], 2) == ""
    why = unbound_gang([_pod("n1", "Running"), _pod(why="0/2 nodes are available: 1 Insufficient cpu.")], 2)
    assert why == "1 of 2 pods bound to nodes (0/2 nodes are available: 1 Insufficient cpu.)"
    assert unbound_gang([], 2) == "0 of 2 pods bound to nodes"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_gang_timeout_refuses_only_after_the_timeout_and_only_partial_gangs() -> None:
    clock = _Clock()
    guard = GangGuard(object(), namespace="w", cluster="member-a", gang_timeout=10, clock=clock)  # type: ignore[arg-type]
    assert guard.admission is GangAdmission.NONE and not guard.informers
    guard.prepare(_job(), "p1")
    partial = [_pod("n1", "Running"), _pod(why="Insufficient cpu")]
    clock.now += 9
    assert guard.overdue("p1", partial, 2) == ""
    clock.now += 2
    why = guard.overdue("p1", partial, 2)
    assert why.startswith("gang timeout on member-a: 1 of 2 pods bound to nodes (Insufficient cpu) after 11s")
    # A gang that was whole once is never refused later (a pod finishing early is not a partial gang).
    guard.prepare(_job(), "p2")
    assert guard.overdue("p2", [_pod("n1"), _pod("n2")], 2) == ""
    clock.now += 100
    assert guard.overdue("p2", partial, 2) == ""


def test_kueue_mode_has_no_gang_timeout() -> None:
    clock = _Clock()
    guard = GangGuard(object(), namespace="w", cluster="b", kueue_queue="lq", gang_timeout=1,  # type: ignore[arg-type]
                      clock=clock)
    assert guard.admission is GangAdmission.KUEUE
    guard.prepare(_job(), "p")
    clock.now += 1000
    assert guard.overdue("p", [], 2) == ""


def test_kueue_mode_asks_to_move_a_placement_held_past_its_admission_timeout() -> None:
    """Kueue's quota is invisible to the federator: a gang Kueue cannot admit would wait on its member for ever
    while other members sit idle. Held past the timeout, the agent asks the federator to move it, in Kueue's
    words, and asks again one timeout later (never at every tick); admission stops the clock, and an eviction
    starts a new one."""
    clock = _Clock()
    guard = GangGuard(object(), namespace="w", cluster="member-b", kueue_queue="lq",  # type: ignore[arg-type]
                      kueue_timeout=60, clock=clock)
    assert guard.kueue_times_out and guard.tick == 5.0
    held = kueue_admit(_job(), "lq")
    admitted = {**held, "spec": {**held["spec"], "suspend": False}}
    guard.prepare(_job(), "p")  # the clock starts at launch, before Kueue has written anything
    clock.now += 59
    assert guard.hold_overdue("p", held) == ""
    clock.now += 1
    why = guard.hold_overdue("p", held)
    assert why == "waiting for Kueue admission on member-b: no Workload yet; held 60s (--kueue-admission-timeout 60s)"
    clock.now += 5
    assert guard.hold_overdue("p", held) == ""  # asked: the next question is one timeout away
    clock.now += 55
    assert guard.hold_overdue("p", held).endswith("held 60s (--kueue-admission-timeout 60s)")
    guard.prepare(_job(), "q")
    clock.now += 30
    assert guard.hold_overdue("q", admitted) == ""  # admitted in time: its clock stops
    clock.now += 1000
    assert guard.hold_overdue("q", admitted) == ""
    assert guard.hold_overdue("q", held) == ""  # evicted (suspended again): a new clock starts now
    clock.now += 60
    assert guard.hold_overdue("q", held).startswith("waiting for Kueue admission on member-b")
    off = GangGuard(object(), namespace="w", cluster="b", kueue_queue="lq", kueue_timeout=0,  # type: ignore[arg-type]
                    clock=clock)
    off.prepare(_job(), "p")
    clock.now += 10**6
    assert off.hold_overdue("p", held) == "" and off.tick == 0
    none = GangGuard(object(), namespace="w", cluster="a", gang_timeout=8, clock=clock)  # type: ignore[arg-type]
    assert not none.kueue_times_out and none.hold_overdue("p", held) == "" and none.tick == 2.0


def test_gang_admission_from_the_wire() -> None:
    assert GangAdmission.parse("kueue") is GangAdmission.KUEUE
    assert GangAdmission.parse("") is GangAdmission.UNKNOWN
    assert GangAdmission.parse("volcano") is GangAdmission.NONE  # unknown admitters are not trusted to gang


# A watched gang's life as the pod watch shows it, one change at a time: (seconds since launch, the bound
# replicas after the change, the replicas the caller knows of then). The backend asks `expired` before it takes
# a change in and `observe`s the change after; `overdue` is its periodic check. Gang timeout 5 s, 2 replicas.
_SEQUENTIAL = [(0.3, 1, 2), (4.3, 0, 2), (4.5, 1, 2), (8.5, 0, 2)]  # ci9: the second binds when the first is done
_SCENARIOS = {
    "one after another, changes right after the deadline": (_SEQUENTIAL, 8.5, "1 of 2 pods bound"),
    "one after another, finished within the deadline": ([(0.3, 1, 2), (2.0, 0, 2), (2.1, 1, 2), (4.0, 0, 2)],
                                                         4.0, ""),
    "whole in time, then one done early": ([(0.3, 1, 2), (1.0, 2, 2), (4.3, 1, 2), (8.5, 0, 2)], 8.5, ""),
    "whole only after the deadline": ([(0.3, 1, 2), (5.2, 2, 2)], 5.2, "1 of 2 pods bound"),
    "pods seen before the workload (ci9)": ([(0.2, 1, 1), (4.3, 0, 1), (4.5, 1, 1), (8.5, 0, 1)], 8.5,
                                            "1 of 2 pods bound"),
}


@pytest.mark.parametrize(("changes", "end", "refused"), _SCENARIOS.values(), ids=_SCENARIOS.keys())
def test_a_watched_gang_is_judged_at_its_deadline_on_what_was_seen_by_then(
        changes: list[tuple[float, int, int]], end: float, refused: str) -> None:
    """The verdict does not depend on when the periodic check runs: every change after the deadline is
    judged first, on the gang as seen before it."""
    clock = _Clock()
    start = clock.now
    guard = GangGuard(object(), namespace="w", cluster="member-a", gang_timeout=5, clock=clock)  # type: ignore[arg-type]
    guard.prepare(_job(), "p")
    guard.created("p")
    verdict = ""
    for at, bound, known in changes:
        clock.now = start + at
        verdict = guard.expired("p")
        if verdict:
            break
        guard.observe("p", [_pod(f"n{i}", "Running") for i in range(bound)] + [_pod()] * (2 - bound), known)
    assert clock.now == start + end  # the change that brought the verdict, or the last one
    assert verdict.startswith(f"gang timeout on member-a: {refused}") if refused else verdict == ""
