"""Which namespaces a queue's jobs go in, standalone: a tenant's names are its own (rule `queue-namespaces`).

A job's name is unique within its namespace. In Kubernetes mode RBAC says who may create objects in a
namespace and a Queue's `namespaceSelector` which namespaces may use it, so a namespace belongs to a tenant.
A standalone federator (SQLite store) had nothing of the kind: every job naming no namespace was in `default`,
and any user could submit into any namespace. With a thousand organisations using the docs' example names,
the first to use a name refused it to everybody else, a tenant could take another's names in that tenant's own
namespace, and each refusal confirmed that a name was in use (outside QA, tenants round F1; red team m1).

So, under a multi-tenant policy (`TenancyPolicy.multi_tenant`) in standalone mode, a namespace belongs to the
queues that list it:

- a queue's namespaces are its `namespaces` list; else, for a queue the policy does not declare,
  `defaultQueue.namespaces`; else the one named as the queue (so a policy written before this rule binds each
  queue's own namespace with no change);
- a job that names no namespace, or `default` (what the job file's default reads as), goes in the first of its
  queue's namespaces, unless `default` is one of them;
- a job naming another namespace is refused (PERMISSION_DENIED naming `metadata.namespace`, and the namespaces
  this caller may use: those of the queues it may submit to, never another tenant's);
- admins may name any namespace (their job naming none still goes in its queue's first namespace).

The answer depends on the policy and the caller only, never on which jobs exist (as agents' ids, security m2).
A single-tenant policy binds nothing: every namespace is open and `default` is the default, as always. Pure:
the server's Submit applies it (`server/job_service.py`); Kubernetes mode does not (its namespaces are bound there).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from federator.model import JobSpec

DEFAULT_NAMESPACE = "default"
RULE = "queue-namespaces"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a namespace: a DNS label, as Kubernetes has it


def namespaces_from_document(body: Any, where: str, bad: list[str]) -> tuple[str, ...] | None:
    """A queue's `namespaces: [a, b]` (the first is where its jobs naming none go); None when absent."""
    if not isinstance(body, Mapping) or body.get("namespaces") is None:
        return None
    raw, at = body["namespaces"], f"{where}.namespaces"
    if not isinstance(raw, list) or not raw:
        bad.append(f"{at}: must be a non-empty list of namespace names, got {raw!r}"[:200])
        return None
    out: list[str] = []
    for i, name in enumerate(raw):
        if not isinstance(name, str) or not _NAME.match(name):
            bad.append(f"{at}[{i}]: must be a namespace name (a lower-case DNS label), got {name!r}"[:200])
        elif name in out:
            bad.append(f"{at}[{i}]: {name!r} is listed twice")
        else:
            out.append(name)
    return tuple(out) if len(out) == len(raw) else None


def queue_namespaces(queue: str, lists: Mapping[str, tuple[str, ...]], default: tuple[str, ...] | None,
                     declared: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The namespaces a queue's jobs go in: its list; else, for a queue nobody declared, defaultQueue's; else its
    own name. None when that name is a namespace another queue lists (a queue invented under an open defaultQueue,
    named `lab-dev` to get into the namespace `lab` lists, gets no namespace of its own).

    defaultQueue's list binds undeclared queues only: a declared queue that took it would share one namespace
    with every other declared queue without a list, and two organisations' names would collide there again
    (outside re-test N1: the docs' own example, `defaultQueue: {namespaces: [sandbox]}` beside organisations'
    queues without lists, put every organisation's jobs in `sandbox`)."""
    listed = lists.get(queue) or (default if queue not in declared else None)
    if listed:
        return listed
    return () if any(queue in names for names in lists.values()) else (queue,)


def bind_namespace(spec: JobSpec, *, owned: tuple[str, ...], admin: bool,
                   usable: Callable[[], list[str]]) -> JobSpec | str:
    """The spec in the namespace it goes in, or why it may not (the message of a PERMISSION_DENIED).

    `owned`: the job's queue's namespaces (`queue_namespaces`); `usable`: the namespaces of the queues the
    caller may submit to, asked only for a refusal."""
    if owned and spec.namespace == DEFAULT_NAMESPACE and DEFAULT_NAMESPACE not in owned:
        return replace(spec, namespace=owned[0])
    if admin or spec.namespace in owned:
        return spec
    mine = usable()
    choice = f"namespaces you may use: {', '.join(mine)}" if mine else "you may use no namespace"
    if not owned:
        return (f"metadata.namespace: {RULE}: queue {spec.queue!r} has no namespace: it lists none, and the "
                f"namespace of its name belongs to the queues whose namespaces list it; {choice}")
    return (f"metadata.namespace: {RULE}: namespace {spec.namespace!r} is not a namespace of queue "
            f"{spec.queue!r} (its namespaces: {', '.join(owned)}): under a policy with tenancy or access lists a "
            "namespace belongs to the queues whose namespaces list it (a queue that lists none has the one of its "
            f"own name); leave metadata.namespace out to use {owned[0]!r}; {choice}")


__all__ = ["DEFAULT_NAMESPACE", "RULE", "bind_namespace", "namespaces_from_document", "queue_namespaces"]
