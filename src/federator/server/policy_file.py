"""The scheduling policy file (`serve --policy`): read whole, checked whole, and re-read while the federator runs.

Why a module of its own: the policy holds two things read by different parts of the federator, the scheduler's
config (queues, weights, quotas, preemption, ...) and the tenancy (who may use which queue). Both used to be read
from the file separately at start, and a change was a restart (outside QA, tenants F5: a 1,000-organisation
policy takes ten seconds to restart on, and every agent stream drops). Here the file is read ONCE per look and
both parts are built from that one text, so a file swapped between two reads can never give the scheduler one
version and the authorizer another; `read_policy_file` is what `serve` starts with, what `federator policy
check` runs, and what a reload runs, so the three agree on what is valid.

A reload (SIGHUP, or the file's content changed: a ConfigMap volume swaps the file under the process) is all or
nothing: a file with any problem is refused with every problem named by field, and the last good policy stays,
scheduler and tenancy both. A good one is handed to the listeners (the Federator between cycles, the
Authorizer, in Kubernetes mode the Queue controller that lays Queue objects over it). What a reload does to
jobs already accepted is what a restart with the new file would do, no more: docs/operators.md, "Changing the
policy".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from federator.catalog.model_names import quota_model_problem
from federator.scheduler import PolicyError, SchedulerConfig
from federator.scheduler.policy import policy_from_document
from federator.security.authz import TenancyError, TenancyPolicy, tenancy_from_document
from federator.security.watched import Refusal, WatchedFile, digest
from federator.server.tenancy_change import tenancy_change
from federator.yamltext import YamlFileError, load_yaml_text, read_text

log = logging.getLogger("federator.server")


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """One reading of a policy file: the scheduler's part and the authorizer's, from the same text."""

    config: SchedulerConfig
    tenancy: TenancyPolicy


class PolicyFileError(ValueError):
    """A policy file that cannot be used: every problem, each naming its field (`queues.org-7.weight: ...`)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def read_policy_file(path: Path) -> LoadedPolicy:
    """The policy in `path`, checked as `serve --policy` checks it (quota models against the accelerator catalog in
    use); PolicyFileError lists every problem of either part."""
    source = str(path)
    try:
        text = read_text(path)
    except OSError as exc:
        raise PolicyFileError(source, [f"file: {exc.strerror or exc}"]) from exc
    except ValueError as exc:  # not UTF-8 text
        raise PolicyFileError(source, [f"file: {exc}"]) from exc
    try:
        doc = load_yaml_text(text)
    except YamlFileError as exc:
        raise PolicyFileError(source, [f"document: {exc}"]) from exc
    doc = {} if doc is None else doc
    problems: list[str] = []
    config = tenancy = None
    try:
        config = policy_from_document(doc, models=quota_model_problem)
    except PolicyError as exc:
        problems += exc.problems
    if isinstance(doc, Mapping):  # else the scheduler's part has said so
        try:
            tenancy = tenancy_from_document(doc)
        except TenancyError as exc:
            problems += [p for p in exc.problems if p not in problems]
    if problems or config is None or tenancy is None:
        raise PolicyFileError(source, problems)
    return LoadedPolicy(config, tenancy)


def describe_change(old: LoadedPolicy, new: LoadedPolicy) -> str:
    """What a reload changed, for the log and the audit line: queues added, removed and changed, then the other
    sections by name, the tenancy's by their paths in the file (never "changed tenancy" for a queue added)."""
    said = [f"added queue {q}" for q in sorted(set(new.config.queues) - set(old.config.queues))]
    said += [f"removed queue {q}" for q in sorted(set(old.config.queues) - set(new.config.queues))]
    said += [f"changed queue {q}" for q in sorted(set(old.config.queues) & set(new.config.queues))
             if old.config.queues[q] != new.config.queues[q]]
    said += [f"changed {f.name}" for f in fields(SchedulerConfig)
             if f.name != "queues" and getattr(old.config, f.name) != getattr(new.config, f.name)]
    moved = set(old.config.queues) ^ set(new.config.queues)
    said += tenancy_change(old.tenancy, new.tenancy, added_or_removed=moved)  # by section (server/tenancy_change.py)
    return "; ".join(said) or "no change"


Listener = Callable[[LoadedPolicy, LoadedPolicy], None]
"""Told (old, new) to put a new policy in force. One that raises must leave what it swapped as it was; the reload
is then refused, and the listeners told before it are told (new, old) to put the old one back (security/watched.py
`WatchedFile`, as for the trust file)."""


class PolicyFile(WatchedFile[LoadedPolicy]):
    """The policy file and the last good policy it gave; `poll` re-reads it if its content changed, `reload` in
    any case (SIGHUP). `problem` says why the file on disk is refused; `change` what the last reload taken changed
    (describe_change), for the audit line."""

    what = "policy"
    log = logging.getLogger("federator.server")

    def __init__(self, path: Path) -> None:
        self._seen = digest([path])
        super().__init__(path, read_policy_file(path))  # PolicyFileError: the start is refused

    def _read(self) -> LoadedPolicy | Refusal:
        try:
            return read_policy_file(self.path)
        except PolicyFileError as exc:
            return Refusal(str(exc))

    def _describe(self, old: LoadedPolicy, new: LoadedPolicy) -> str:
        return describe_change(old, new)

    def _summary(self, value: LoadedPolicy) -> str:
        return f"{len(value.config.queues)} queues"

    def _fingerprint(self) -> bytes:
        return digest([self.path])


__all__ = ["Listener", "LoadedPolicy", "PolicyFile", "PolicyFileError", "describe_change", "read_policy_file"]
