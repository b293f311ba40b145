"""A refusal of a one-count job said in the fields its file wrote: `spec.acceleratorModels[N]`, never the
`spec.accelerators[N].model` the federator made of it.

Why: `resources: {huawei.com/Ascend910: 1}` with `acceleratorModels: [Ascend910B]` reaches the federator as one
alternative per model (jobfile.py: the wire has no resource form for a vendor other than the legacy one), so an
unknown model or a template pin was refused as `spec.accelerators[0].model`, a field the file never had (vendor QA
vendqa61 V3). The federator's spec does not keep which form was written; the one who holds the written job does: the
CLI its file (cli/written_form.py), the FederatedJob controller its object (backends/kube/controller.py). The Nth
alternative is the Nth model. Only the message changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# An alternative's model, which the one-count form made of the written Nth acceleratorModels entry (jobfile.py)
_ALTERNATIVE_MODEL = re.compile(r"\bspec\.accelerators\[(\d+)\]\.model\b")


def one_count_resource(spec: object) -> str:
    """The accelerator resource a written job's `spec` asks for in the one-count form (`spec.resources`, without
    `spec.accelerators`), else ""."""
    resources = spec.get("resources") if isinstance(spec, Mapping) and "accelerators" not in spec else None
    names = [str(k) for k in resources if "/" in str(k)] if isinstance(resources, Mapping) else []
    return names[0] if len(names) == 1 else ""


def models_as_written(detail: str, spec: object) -> str:
    """The federator's words `detail` about a job written as `spec`: an alternative's model named as the
    `spec.acceleratorModels` entry it was made of when `spec` used the one-count form; as they are otherwise."""
    if not one_count_resource(spec):
        return detail
    return _ALTERNATIVE_MODEL.sub(lambda m: f"spec.acceleratorModels[{m[1]}]", detail)


__all__ = ["models_as_written", "one_count_resource"]
