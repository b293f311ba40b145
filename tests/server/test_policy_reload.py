"""The policy file reloaded while the federator runs (server/policy_file.py, server/policy_use.py): a change on disk
is taken whole from the next cycle and the next call, a bad file is refused whole and the last good policy stays,
each look is counted and audited, and a queue removed with jobs keeps them (they run under defaultQueue).

The wiring is the federator's own (`server/reloads.py` `Reloads`, `server/policy_use.py` `use_policy`, as
`server/app.py` subscribes it); SIGHUP in a real `federator serve` is tests/cli/test_policy_check.py's."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from server_support import Clock, MemoryStore, join, make, spec

from federator.model import JobPhase, JobSpec
from federator.security.audit import AuditLog
from federator.security.authz import Authorizer
from federator.server.federator import Federator
from federator.server.intake import SubmitError
from federator.server.policy_file import PolicyFile, read_policy_file
from federator.server.policy_use import use_policy
from federator.server.reloads import Reloads

from support import audit_lines

V1 = """
tenancy: {admins: {users: [root]}}
queues:
  org-a: {weight: 1, maxPriority: 100, quota: {accelerators: {H100: 0}}, access: {users: [alice]}}
  org-b: {weight: 1, access: {users: [bob]}}
defaultQueue: {access: {users: [root]}}
"""


@dataclass
class Bed:
    fed: Federator
    authz: Authorizer
    policy: PolicyFile
    reloads: Reloads
    audit_file: Path

    def write(self, text: str) -> None:
        self.policy.path.write_text(text)

    def sample(self, name: str, **labels: str) -> float | None:
        return self.fed.metrics.registry.get_sample_value(name, labels)

    def audited(self) -> list[dict[str, object]]:
        return audit_lines(self.audit_file)


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    path = tmp_path / "policy.yaml"
    path.write_text(V1)
    policy = PolicyFile(path)
    fed = make(MemoryStore(), Clock())
    fed.set_scheduler_config(policy.current.config)
    authz = Authorizer(policy.current.tenancy)
    audit = AuditLog(tmp_path / "audit.log")
    reloads = Reloads(fed.metrics, trust=None, serving=None, policy=policy, audit=audit)
    policy.subscribe(lambda old, new: use_policy(old, new, fed=fed, authz=authz))
    return Bed(fed, authz, policy, reloads, tmp_path / "audit.log")


def _org_a(name: str, *, priority: int = 0, gpus: int = 8) -> JobSpec:
    return replace(spec(name, gpus=gpus), queue="org-a", priority=priority)


def test_a_changed_file_is_taken_at_the_next_poll_by_the_scheduler_submit_and_the_authorizer(bed: Bed) -> None:
    """Weights, maxPriority and the admins change from the next look, with no SIGHUP (a ConfigMap volume swaps
    the file under the process); the look is counted and audited with what changed."""
    with pytest.raises(SubmitError, match="maxPriority"):
        bed.fed.submit(_org_a("urgent", priority=500))
    bed.reloads.look()  # nothing changed: no reload, nothing counted
    assert bed.sample("federator_policy_reload_total", result="ok") == 0
    bed.write(V1.replace("maxPriority: 100", "maxPriority: 1000").replace("org-b: {weight: 1",
                                                                              "org-b: {weight: 3")
              .replace("users: [root]}}\nqueues", "users: [root, carol]}}\nqueues"))
    bed.reloads.look()
    assert bed.fed.scheduler.config.queues["org-b"].weight == 3
    assert bed.fed.submit(_org_a("urgent", priority=500)).spec.priority == 500
    assert "carol" in bed.authz.policy.admins.users and "carol" in bed.authz.base.admins.users
    assert bed.sample("federator_policy_reload_total", result="ok") == 1
    assert bed.sample("federator_policy_reload_failing") == 0
    (line,) = bed.audited()
    assert line["action"] == "policy.reload" and line["result"] == "accepted"
    assert "changed queue org-a" in str(line["message"]) and "changed tenancy" in str(line["message"])


@pytest.mark.parametrize(("good", "bad", "field"), [
    ("org-b: {weight: 1", "org-b: {weight: heavy", "queues.org-b.weight"),
    ("org-b: {weight: 1", "org-b: {wieght: 1", "queues.org-b.wieght"),
    ("access: {users: [bob]}", "access: {users: bob}", "queues.org-b.access"),  # the tenancy part alone
    ("access: {users: [bob]}}", "access: {users: [bob]}", "document"),  # not YAML
], ids=["scheduler-part", "unknown-field", "tenancy-part", "not-yaml"])
def test_a_bad_file_is_refused_whole_and_the_last_good_policy_stays(bed: Bed, good: str, bad: str, field: str,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A file good in one queue and bad in another is not half taken: org-a's new maxPriority is not used either.
    The refusal names the field, is counted, sets the gauge and is audited; the next good file clears it."""
    text = V1.replace("maxPriority: 100", "maxPriority: 1000").replace(good, bad)
    before = bed.fed.scheduler.config, bed.authz.policy
    bed.write(text)
    with caplog.at_level(logging.ERROR, logger="federator.server"):
        bed.reloads.look()
    assert (bed.fed.scheduler.config, bed.authz.policy) == before
    with pytest.raises(SubmitError, match="maxPriority"):
        bed.fed.submit(_org_a("urgent", priority=500))
    assert bed.sample("federator_policy_reload_total", result="refused") == 1
    assert bed.sample("federator_policy_reload_failing") == 1
    (said,) = [r.getMessage() for r in caplog.records if "policy file refused" in r.getMessage()]
    assert field in said and str(bed.policy.path) in said
    (line,) = bed.audited()
    assert line["result"] == "refused" and field in str(line["message"])
    bed.write(V1)
    bed.reloads.look()
    assert bed.sample("federator_policy_reload_failing") == 0
    assert bed.sample("federator_policy_reload_total", result="ok") == 1


def test_sighup_rereads_a_file_whose_content_the_poll_saw_as_unchanged(bed: Bed) -> None:
    bed.reloads.on_sighup()
    assert bed.sample("federator_policy_reload_total", result="ok") == 1
    assert bed.policy.change == "no change"


def test_a_queue_removed_with_pending_work_keeps_it_and_it_is_placed_under_default_queue(
        bed: Bed, caplog: pytest.LogCaptureFixture) -> None:
    """org-a's quota of 0 keeps its job waiting; the reload that removes org-a neither drops nor cancels the
    job: the next cycle places it under defaultQueue's terms (no quota), and a WARNING counts what it held."""
    join(bed.fed, "c1")
    job = bed.fed.submit(_org_a("waits", gpus=1))
    bed.fed.schedule_once()
    assert bed.fed.jobs[job.job_id].phase is JobPhase.PENDING
    assert "quota" in bed.fed.jobs[job.job_id].pending_reason.message
    bed.write(V1.replace("  org-a: {weight: 1, maxPriority: 100, quota: {accelerators: {H100: 0}}, "
                         "access: {users: [alice]}}\n", ""))
    with caplog.at_level(logging.WARNING, logger="federator.server"):
        bed.reloads.look()
    assert "org-a" not in bed.fed.scheduler.config.queues
    (said,) = [r.getMessage() for r in caplog.records if "no longer declared" in r.getMessage()]
    assert "org-a" in said and "1 unfinished jobs" in said and "cancel --queue org-a" in said
    bed.fed.schedule_once()
    assert bed.fed.jobs[job.job_id].phase is JobPhase.PLACED


def test_a_cycle_planned_before_a_reload_runs_with_the_policy_it_was_planned_with(bed: Bed) -> None:
    """The cycle is computed off the event loop from a plan taken on it: the reload, on the loop too, swaps the
    Federator's scheduler for the next plan and leaves the one in flight alone."""
    plan = bed.fed.cycles.plan()
    bed.write(V1.replace("org-b: {weight: 1", "org-b: {weight: 5"))
    bed.reloads.look()
    assert plan.scheduler.config.queues["org-b"].weight == 1
    assert bed.fed.cycles.plan().scheduler.config.queues["org-b"].weight == 5


def test_serve_check_and_reload_read_a_policy_the_same_way(tmp_path: Path) -> None:
    """One reading gives both parts: a quota on a model the catalog does not know is refused, as at start."""
    path = tmp_path / "p.yaml"
    path.write_text("queues: {org-a: {quota: {accelerators: {H1000: 8}}}}\n")
    with pytest.raises(ValueError, match=r"queues\.org-a\.quota\.accelerators\.H1000.*did you mean"):
        read_policy_file(path)


class _Broken(RuntimeError):
    pass


def _fail(*_args: object) -> None:
    raise _Broken("the scheduler is out to lunch")


@pytest.mark.parametrize("where", ["midway", "after"])
def test_a_reload_that_fails_while_put_in_force_is_refused_whole_and_tried_again(
        bed: Bed, where: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """0.7.0 review: the authorizer took the new tenancy, the scheduler config raised, and the federator ran half
    of each policy, counted as taken, until the file changed again. Midway: use_policy raises between the
    authorizer and the scheduler; after: a later listener raises once use_policy has put it all in force. Either
    way the old policy stays whole, the reload is counted, audited and logged as refused naming the error, and
    the next look takes the file."""
    before = bed.fed.scheduler.config, bed.authz.policy, bed.authz.base, bed.policy.current
    broken = [True]
    if where == "midway":
        monkeypatch.setattr(bed.fed, "set_scheduler_config", _fail)
    else:
        bed.policy.subscribe(lambda old, new: _fail() if broken else None)
    bed.write(V1.replace("org-b: {weight: 1", "org-b: {weight: 3").replace("users: [root]}}\nqueues",
                                                                           "users: [root, carol]}}\nqueues"))
    with caplog.at_level(logging.ERROR, logger="federator.server"):
        bed.reloads.look()
    assert (bed.fed.scheduler.config, bed.authz.policy, bed.authz.base, bed.policy.current) == before
    assert "carol" not in bed.authz.policy.admins.users and bed.fed.scheduler.config.queues["org-b"].weight == 1
    assert bed.sample("federator_policy_reload_total", result="refused") == 1
    assert bed.sample("federator_policy_reload_total", result="ok") == 0
    assert bed.sample("federator_policy_reload_failing") == 1
    assert any("the scheduler is out to lunch" in r.getMessage() for r in caplog.records)
    (line,) = bed.audited()
    assert line["result"] == "refused" and "_Broken: the scheduler is out to lunch" in str(line["message"])
    monkeypatch.undo()  # the fault is mended
    broken.clear()
    bed.reloads.look()  # the same file: nothing was wrong with it, so it is read again
    assert bed.fed.scheduler.config.queues["org-b"].weight == 3 and "carol" in bed.authz.policy.admins.users
    assert bed.sample("federator_policy_reload_total", result="ok") == 1
    assert bed.sample("federator_policy_reload_failing") == 0
