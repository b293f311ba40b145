"""The workloads namespace's Pod Security Admission labels, read against the agent's own level.

The agent's check at launch (`KubeBackend.launch`) is one guard; the member's
own kube-apiserver is the other, and the stronger one: it holds every pod, also
those a workload's controller makes later, whoever made the workload. It
enforces a level on a namespace labelled `pod-security.kubernetes.io/enforce`.
The agent does not own its namespace (the chart or `rbac-agent.yaml` makes it,
or the provider does, with its own quotas and labels), so it does not write the
label: it reads it when it starts and warns when the label leaves pods to the
agent alone (absent, or weaker than the agent's level), or would refuse pods
the agent admits (stricter than `admission_level`, e.g. `baseline` while the
agent allows IPC_LOCK).

`namespace_warnings` is pure: a namespace object in, warnings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federator.backends.kube.api import NAMESPACES, KubeApi, KubeError
from federator.security.podsecurity import PodSecurity, PodSecurityLevel, describe, stricter
from federator.security.podsecurity_member import admission_level

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"


def namespace_warnings(namespace: Mapping[str, Any], policy: PodSecurity) -> list[str]:
    """What an operator should fix in the namespace's labels for the member to enforce what the agent does."""
    meta = namespace.get("metadata") or {}
    name = str(meta.get("name", ""))
    enforced = str((meta.get("labels") or {}).get(ENFORCE_LABEL, ""))
    want = admission_level(policy)
    fix = (f"kubectl label namespace {name} --overwrite {ENFORCE_LABEL}={want} {ENFORCE_VERSION_LABEL}=latest "
           "(the federator-agent chart sets it on the namespace it creates)")
    if want is not policy.level:
        why = (f"the agent's allowances ({describe(policy)}) go beyond what Pod Security Admission's "
               f"{policy.level} admits, so only {want} can be enforced there; the agent's own check holds the rest")
    else:
        why = ""
    if not enforced:
        return [f"namespace {name} has no {ENFORCE_LABEL} label: the member's API server enforces no pod security "
                f"on the workloads there, only this agent's own check ({describe(policy)}) does; {fix}"
                + (f"; {why}" if why else "")]
    if enforced not in PodSecurityLevel.__members__.values():
        return [f"namespace {name}: {ENFORCE_LABEL}={enforced[:40]!r} is not a level the API server knows; {fix}"]
    level = PodSecurityLevel(enforced)
    if stricter(want, level):
        return [f"namespace {name} enforces pod security {level}, weaker than this agent's {describe(policy)}: the "
                "member's API server would admit pods the agent refuses (made by anyone else who may create there); "
                f"{fix}" + (f"; {why}" if why else "")]
    if stricter(level, want):
        return [f"namespace {name} enforces pod security {level}, stricter than this agent's {describe(policy)}: "
                f"pods the agent admits (its allowances) will be refused by the member's API server; {fix}"]
    return []


def read_namespace_warnings(api: KubeApi, namespace: str, policy: PodSecurity) -> list[str]:
    """`namespace_warnings` of the namespace as the API server has it (blocking: call in a thread). Labels it
    cannot read are a warning, not a stop: the agent's own check at launch holds either way."""
    try:
        obj = api.get(NAMESPACES, namespace)
    except KubeError as exc:
        return [f"namespace {namespace}: its labels could not be read ({exc}), so whether the member's API server "
                f"enforces pod security there is unknown; this agent's own check ({describe(policy)}) still holds "
                f"every launch (RBAC: get namespaces {namespace}, as deploy/kubernetes/rbac-agent.yaml grants)"]
    return namespace_warnings(obj, policy)


__all__ = ["ENFORCE_LABEL", "ENFORCE_VERSION_LABEL", "namespace_warnings", "read_namespace_warnings"]
