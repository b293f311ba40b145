"""What a policy reload changed of the tenancy, section by section, for the log line and the audit line.

Why: a reload said "changed tenancy (admins, groups, delegates, access or namespaces lists)" whenever the tenancy
it built differed at all, and a tenancy built from the file lists the declared queues: a reload that only added a
queue (a new organisation, the commonest reload of a national policy) was audited as a change of who may do what,
and a security reviewer reading the audit log had to diff the files to learn that nothing of the kind changed.
Each section is named as the policy file names it (`tenancy.admins`, `queues.org-a.access`), the paths the
refusal of a bad file names too, and what follows from the queues alone (the declared set) is left to their own
words ("added queue org-c").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from federator.security.authz import TenancyPolicy


def _per_queue(field: str, old: Mapping[str, object], new: Mapping[str, object], skip: Collection[str]) -> list[str]:
    return [f"changed queues.{q}.{field}" for q in sorted(set(old) | set(new))
            if q not in skip and old.get(q) != new.get(q)]


def tenancy_change(old: TenancyPolicy, new: TenancyPolicy, *, added_or_removed: Collection[str] = ()) -> list[str]:
    """The tenancy sections that differ between `old` and `new`, by their path in the policy file: a queue added or
    removed (`added_or_removed`, said as such by the caller) is not said again for its access or namespaces."""
    said = [f"changed tenancy.{name}" for name in ("admins", "delegates") if getattr(old, name) != getattr(new, name)]
    said += [f"changed tenancy.groups.{g}" for g in sorted(set(old.groups) | set(new.groups))
             if old.groups.get(g) != new.groups.get(g)]
    said += _per_queue("access", old.queue_access, new.queue_access, added_or_removed)
    said += _per_queue("namespaceSelector", old.queue_namespaces, new.queue_namespaces, added_or_removed)
    said += _per_queue("namespaces", old.namespace_lists, new.namespace_lists, added_or_removed)
    for field, was, now in (("access", old.default_access, new.default_access),
                            ("namespaceSelector", old.default_namespaces, new.default_namespaces),
                            ("namespaces", old.default_namespace_list, new.default_namespace_list)):
        if was != now:
            said.append(f"changed defaultQueue.{field}")
    if old.multi_tenant != new.multi_tenant:
        said.append("the policy is now " + ("multi-tenant" if new.multi_tenant else "single-tenant"))
    return said


__all__ = ["tenancy_change"]
