"""Kubernetes mode: a reloaded policy file is the new base the Queue objects are laid over again
(server/policy_use.py, QueueController.rebase): a Queue object keeps overriding its queue, the file's other
queues and the tenancy change, and a queue the file dropped but a Queue object declares stays declared."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from test_kube_queues import _NoApi, queue_object

from federator.backends.kube.queue_controller import QueueController
from federator.scheduler import Scheduler
from federator.security.authz import Authorizer
from federator.server.federator import Federator
from federator.server.policy_file import read_policy_file
from federator.server.policy_use import use_policy
from federator.store import SqliteJobStore

V1 = """
tenancy: {admins: {users: [root]}}
queues:
  research: {weight: 2, access: {users: [ann]}}
  serving: {weight: 3, access: {users: [sam]}}
"""
V2 = """
tenancy: {admins: {users: [root, carol]}}
queues:
  research: {weight: 7, access: {users: [ann]}}
"""


def test_a_reloaded_file_is_the_base_the_queue_objects_are_laid_over_again(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(V1)
    old = read_policy_file(path)
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), scheduler=Scheduler(old.config))
    authz = Authorizer(old.tenancy)
    ctl = QueueController(fed, _NoApi(), authz=authz)  # type: ignore[arg-type]
    ctl.informer.cache = {"uid-serving": queue_object("serving", {"weight": 5, "access": {"users": ["sam"]}})}
    ctl.apply(list(ctl.informer.cache.values()))
    assert fed.scheduler.config.queues["serving"].weight == 5
    path.write_text(V2)
    use_policy(old, read_policy_file(path), fed=fed, authz=authz,
               kube=SimpleNamespace(queues=ctl))  # type: ignore[arg-type]
    assert fed.scheduler.config.queues["research"].weight == 7  # the file's change
    assert fed.scheduler.config.queues["serving"].weight == 5  # the Queue object still over it
    assert "carol" in authz.policy.admins.users
    assert "serving" in authz.policy.declared and "serving" in authz.policy.queue_access


def test_a_queue_object_or_a_reload_that_changes_who_sees_what_is_a_point_in_the_watch_history(
        tmp_path: Path) -> None:
    """Portal re-test N8: a numbered Watch across a change of the access policy is told to list again
    (server/watch_history.py `policy_changed`); in Kubernetes mode a Queue object's access list is that policy
    too. A change that leaves the access policy as it was (a weight) is no such point."""
    path = tmp_path / "policy.yaml"
    path.write_text(V1)
    old = read_policy_file(path)
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), scheduler=Scheduler(old.config))
    authz = Authorizer(old.tenancy)
    ctl = QueueController(fed, _NoApi(), authz=authz)  # type: ignore[arg-type]
    ctl.informer.cache = {"uid-serving": queue_object("serving", {"weight": 5, "access": {"users": ["sam"]}})}
    ctl.apply(list(ctl.informer.cache.values()))
    first = fed.history.policy_at
    ctl.informer.cache = {"uid-serving": queue_object("serving", {"weight": 6, "access": {"users": ["sam"]}})}
    ctl.apply(list(ctl.informer.cache.values()))
    assert fed.history.policy_at == first  # a weight: who sees what is as it was
    ctl.informer.cache = {"uid-serving": queue_object("serving", {"weight": 6, "access": {"users": ["sue"]}})}
    ctl.apply(list(ctl.informer.cache.values()))
    assert fed.history.policy_at == fed.history.revision > first
    path.write_text(V2)
    use_policy(old, read_policy_file(path), fed=fed, authz=authz,
               kube=SimpleNamespace(queues=ctl))  # type: ignore[arg-type]
    assert fed.history.policy_at == fed.history.revision > first + 1
