"""A member's pod security level as the federator sees it, and what a job needs of it.

Why a module of its own: `security/podsecurity.py` is the Pod Security Standards themselves, the rules and the
check of one template or object against a level, which the submit check and the agent's launch both run. This
side is about members: the cluster labels an agent reports its level by (`policy_labels`, read back by
`policy_of_labels` where a Hello is checked and where the scheduler's PodSecurity filter reads them), the Pod
Security Admission level a namespace needs for it (`admission_level`), what a job's templates break at each level
(`needed_by`, `PodSecurityNeed`, cached over a spec's texts for the scheduler: `needed_by_texts`), and the words
and `federator agent` flags a member's refusal says (`member_refusal`). It sat at the end of podsecurity.py until
that module passed 600 lines (review of stop 60).

Pure, as podsecurity.py: plain dicts and labels in, values out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from federator.podtemplates import merged_over
from federator.security.podsecurity import (
    BASELINE_CAPABILITIES,
    RESTRICTED_CAPABILITIES,
    SERVER_FLAGS,
    PodSecurity,
    PodSecurityLevel,
    Violation,
    check_object,
    check_template,
    describe,
    stricter,
)

# The cluster labels an agent reports its own level by (`federator agent --pod-security`, `--allow-capability`,
# `--allow-host-network`), read by the scheduler's PodSecurity filter. No level label: not filtered (old agents).
LEVEL_LABEL = "federator.io/pod-security"
CAPABILITIES_LABEL = "federator.io/pod-security-capabilities"  # sorted names joined by ".", e.g. IPC_LOCK.NET_RAW
HOST_NETWORK_LABEL = "federator.io/pod-security-host-network"  # "true" when allowed
POLICY_LABELS = (LEVEL_LABEL, CAPABILITIES_LABEL, HOST_NETWORK_LABEL)  # set by the agent's flags alone


def policy_labels(policy: PodSecurity) -> dict[str, str]:
    """The cluster labels an agent reports its level by (allowances only when it has them)."""
    labels = {LEVEL_LABEL: str(policy.level)}
    if policy.allowed_capabilities:
        labels[CAPABILITIES_LABEL] = ".".join(sorted(policy.allowed_capabilities))
    if policy.allow_host_network:
        labels[HOST_NETWORK_LABEL] = "true"
    return labels


def policy_of_labels(labels: Mapping[str, str]) -> PodSecurity | None:
    """The level a cluster's labels report, None when they report none (an agent older than the labels).
    A ValueError names the label whose value is not one (the federator refuses such a Hello)."""
    level = labels.get(LEVEL_LABEL)
    if level is None:
        for key in (CAPABILITIES_LABEL, HOST_NETWORK_LABEL):
            if key in labels:
                raise ValueError(f"{key}: given without {LEVEL_LABEL}")
        return None
    if level not in PodSecurityLevel.__members__.values():
        raise ValueError(f"{LEVEL_LABEL}: must be one of {', '.join(PodSecurityLevel)}, got {level[:80]!r}")
    raw = labels.get(CAPABILITIES_LABEL, "")
    network = labels.get(HOST_NETWORK_LABEL, "false")
    if network not in ("true", "false"):
        raise ValueError(f"{HOST_NETWORK_LABEL}: must be true or false, got {network[:80]!r}")
    try:
        return PodSecurity(level=PodSecurityLevel(level), allowed_capabilities=frozenset(raw.split(".") if raw else ()),
                           allow_host_network=network == "true")
    except ValueError as exc:
        raise ValueError(str(exc).replace("pod_security.allowed_capabilities:", f"{CAPABILITIES_LABEL}:")) from None


def admission_level(policy: PodSecurity) -> PodSecurityLevel:
    """The Pod Security Admission level (`pod-security.kubernetes.io/enforce`) that lets through every pod the
    policy does: its own level, unless an allowance goes beyond what Kubernetes lets that level add (IPC_LOCK,
    the host network), when only `privileged` admits such pods and the agent's own check is the stricter one."""
    beyond = {PodSecurityLevel.RESTRICTED: RESTRICTED_CAPABILITIES, PodSecurityLevel.BASELINE: BASELINE_CAPABILITIES}
    level = policy.level
    while level is not PodSecurityLevel.PRIVILEGED and (
            policy.allow_host_network or not policy.allowed_capabilities <= beyond[level]):
        level = PodSecurityLevel.BASELINE if level is PodSecurityLevel.RESTRICTED else PodSecurityLevel.PRIVILEGED
    return level


@dataclass(frozen=True, slots=True)
class PodSecurityNeed:
    """What a job's pod templates break at each level when nothing is allowed beyond it: enough to tell, for
    any member's level and allowances, whether its agent will refuse the job, and what would admit it."""

    restricted: tuple[Violation, ...] = ()
    baseline: tuple[Violation, ...] = ()

    def refused(self, policy: PodSecurity) -> tuple[Violation, ...]:
        """What a member holding its pods to `policy` refuses of the job (nothing: it would launch it)."""
        if policy.level is PodSecurityLevel.PRIVILEGED:
            return ()
        found = self.restricted if policy.level is PodSecurityLevel.RESTRICTED else self.baseline
        return tuple(v for v in found if not v.allowed_by(policy))

    def admitting(self, policy: PodSecurity) -> PodSecurity:
        """The least change to `policy` that admits the job: its own level with the allowances the job needs,
        else a lower level with them, else privileged."""
        for level in (PodSecurityLevel.RESTRICTED, PodSecurityLevel.BASELINE):
            if stricter(level, policy.level):
                continue
            found = self.restricted if level is PodSecurityLevel.RESTRICTED else self.baseline
            if all(v.capability or v.host_network for v in found):
                return PodSecurity(level=level, allowed_capabilities=policy.allowed_capabilities | {
                    v.capability for v in found if v.capability}, allow_host_network=policy.allow_host_network or any(
                    v.host_network for v in found))
        return PodSecurity(level=PodSecurityLevel.PRIVILEGED)


def agent_flags(have: PodSecurity, want: PodSecurity) -> str:
    """The `federator agent` flags that turn `have` into `want` (say which, in a refusal)."""
    flags = [] if want.level is have.level else [f"--pod-security {want.level}"]
    if want.level is not PodSecurityLevel.PRIVILEGED:
        flags += [f"--allow-capability {c}" for c in sorted(want.allowed_capabilities - have.allowed_capabilities)]
        if want.allow_host_network and not have.allow_host_network:
            flags.append("--allow-host-network")
    return " ".join(flags)


def needed_by(template: Mapping[str, Any], workload: Mapping[str, Any] | None, *,
              allowed_by: str = SERVER_FLAGS) -> PodSecurityNeed:
    """What a job's pod template (the chosen alternative's merged over it) and its workload object, if it brings
    one, break at restricted and at baseline; paths as the job names them (`spec.template...`)."""
    levels = []
    spec = template.get("spec")
    containers = spec.get("containers") if isinstance(spec, Mapping) else None
    for level in (PodSecurityLevel.RESTRICTED, PodSecurityLevel.BASELINE):
        policy = PodSecurity(level=level)
        found = [_at("spec.template", v) for v in check_template(template, policy=policy, allowed_by=allowed_by)]
        if workload:
            found += [_at("spec.workload", v) for v in check_object(workload, policy=policy, allowed_by=allowed_by)]
        elif level is PodSecurityLevel.RESTRICTED and not containers:
            found.append(Violation("spec.template.spec.containers", 'must be given under pod security "restricted": '
                                   "the container the federator makes by default sets no securityContext"))
        levels.append(tuple(found))
    return PodSecurityNeed(restricted=levels[0], baseline=levels[1])


def needed_by_object(obj: object, *, allowed_by: str = SERVER_FLAGS) -> PodSecurityNeed:
    """What the pod templates inside a rendered workload object break at restricted and at baseline."""
    restricted = PodSecurity(level=PodSecurityLevel.RESTRICTED)
    return PodSecurityNeed(restricted=tuple(check_object(obj, policy=restricted, allowed_by=allowed_by)),
                           baseline=tuple(check_object(obj, policy=PodSecurity(), allowed_by=allowed_by)))


def member_refusal(cluster: str, policy: PodSecurity, found: list[Violation] | tuple[Violation, ...],
                   need: PodSecurityNeed) -> str:
    """Why a member's agent refuses a placement by its own level: every field at fault (the first few), and the
    `federator agent` flags that would admit it. The federator avoids the cluster for the job a while."""
    shown = "; ".join(str(v) for v in found[:4]) + (f" (and {len(found) - 4} more)" if len(found) > 4 else "")
    flags = agent_flags(policy, need.admitting(policy))
    return (f"{cluster or 'this member'} refuses by its pod security level {describe(policy)}: {shown}"
            + (f"; its operator would admit it with federator agent {flags}" if flags else ""))


@lru_cache(maxsize=1 << 12)
def needed_by_texts(template_json: str, alternative_json: str, workload_json: str, *,
                    allowed_by: str = SERVER_FLAGS) -> PodSecurityNeed:
    """`needed_by` over a job spec's JSON texts (its template, the chosen alternative's, its workload), as the
    scheduler holds them: computed once per distinct job, not once per cycle."""
    template = _json_object(template_json)
    if alternative_json:
        template = merged_over(template, _json_object(alternative_json))
    return needed_by(template, _json_object(workload_json) if workload_json else None, allowed_by=allowed_by)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}  # intake has checked every stored text; a bad one asks for nothing to be checked here
    return value if isinstance(value, dict) else {}


def _at(prefix: str, v: Violation) -> Violation:
    return Violation(f"{prefix}.{v.field}", v.problem, capability=v.capability, host_network=v.host_network)


__all__ = ["CAPABILITIES_LABEL", "HOST_NETWORK_LABEL", "LEVEL_LABEL", "POLICY_LABELS", "PodSecurityNeed",
           "admission_level", "agent_flags", "member_refusal", "needed_by", "needed_by_object", "needed_by_texts",
           "policy_labels", "policy_of_labels"]
