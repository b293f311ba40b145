"""One label requirement (key, operator, values) and the one rule that decides In, NotIn, Exists and DoesNotExist.

Why: three selectors read labels: kubectl's string for jobs (`-l app=x,tier!=db,gpu,!spot`, model/label_selector.py),
a job's cluster affinity over clusters' labels (`spec.clusters.selector`, model/cluster_affinity.py) and a tenancy
file's namespace selectors (security/authz.py). Each had its own requirement type and its own matching, so a fix to
one (NotIn of a missing key holds, as in Kubernetes) could miss the others (review59 R2). kubectl's `key=value` is
In (value), `key!=value` NotIn (value), `key` Exists and `!key` DoesNotExist: the same four operators.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class LabelOperator(StrEnum):
    """A label requirement's operator, as Kubernetes' LabelSelectorRequirement spells it."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True, slots=True)
class LabelRequirement:
    """One requirement on a labelled thing's labels: In and NotIn take values, Exists and DoesNotExist none."""

    key: str
    operator: LabelOperator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether these labels meet it (NotIn holds for labels without the key, as in Kubernetes and kubectl's
        `key!=value`)."""
        if self.operator is LabelOperator.EXISTS:
            return self.key in labels
        if self.operator is LabelOperator.DOES_NOT_EXIST:
            return self.key not in labels
        inside = self.key in labels and labels[self.key] in self.values
        return inside if self.operator is LabelOperator.IN else not inside

    def __str__(self) -> str:
        if self.operator in (LabelOperator.EXISTS, LabelOperator.DOES_NOT_EXIST):
            return f"{self.key} {self.operator}"
        return f"{self.key} {self.operator} ({', '.join(self.values)})"


__all__ = ["LabelOperator", "LabelRequirement"]
