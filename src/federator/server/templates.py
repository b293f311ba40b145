"""What the pod templates of a submitted job may carry, decided at submit (API and FederatedJob alike).

Kept apart from the job file validator (`jobfile.parse_job`), which checks a
document's shape the same way everywhere, client side included, and also
rebuilds stored jobs: these rules depend on the federator's settings
(`federator serve --pod-security`) and must never make a stored job
unreadable after an upgrade. A job's templates are its `spec.template`, each
accelerator alternative's template merged over it (what the agent renders for
that alternative), and every pod template inside `spec.workload`.
"""

from __future__ import annotations

import json
from typing import Any

from federator.backends.kube.workloads import merged_over
from federator.jobfile import FieldProblem
from federator.model import JobSpec
from federator.security.podsecurity import PodSecurity, PodSecurityLevel, check_object, check_template


def template_problems(spec: JobSpec, *, policy: PodSecurity) -> list[FieldProblem]:
    """Every field of the job's pod templates the federator refuses, named by its path in the job file."""
    base = _object(spec.pod_template_json)
    found = check_template(base, policy=policy)
    problems = [FieldProblem(f"spec.template.{v.field}", v.problem) for v in found]
    said = {str(v) for v in found}  # an alternative is not blamed for what it takes from the job's template
    for i, alt in enumerate(spec.accelerators):
        if not alt.pod_template_json:
            continue
        merged = merged_over(base, _object(alt.pod_template_json))  # as the agent renders this alternative
        problems += [FieldProblem(f"spec.accelerators[{i}].template.{v.field}", v.problem)
                     for v in check_template(merged, policy=policy) if str(v) not in said]
    if spec.workload_json:
        workload = _object(spec.workload_json)
        problems += [FieldProblem(f"spec.workload.{v.field}", v.problem)
                     for v in check_object(workload, policy=policy)]
    elif policy.level is PodSecurityLevel.RESTRICTED and not (base.get("spec") or {}).get("containers"):
        problems.append(FieldProblem("spec.template.spec.containers", 'must be given under pod security '
                                     '"restricted": the container the federator makes by default sets no '
                                     "securityContext"))
    return problems


def _object(text: str) -> dict[str, Any]:
    """A spec's JSON text as intake has already checked it (an object, or empty)."""
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


__all__ = ["template_problems"]
