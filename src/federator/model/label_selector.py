"""kubectl's equality-based label selector (`-l app=x,tier!=db,gpu,!spot`), parsed and matched against a job's labels.

Why: a job carries metadata.labels (JobSpec.labels), and teams coming from Armada think in job sets
(`armada/job-set: js1`), kubectl users in `-l app=x`; neither could select jobs by them (outside QA, migrate M4).
One parser serves the federator (ListJobsFilter.label_selector, CancelJobsRequest.label_selector) and the CLI (`-l`),
so a selector the CLI takes is one the federator takes. Only the equality-based forms, comma = AND:
`key=value` (also `key==value`), `key!=value` (also true of a job without the key, as kubectl), `key` (has it),
`!key` (has it not). Set-based forms (`in`, `notin`) are refused by name rather than misread. Each part comes to
model/label_requirement.py's LabelRequirement (`=` In, `!=` NotIn, `key` Exists, `!key` DoesNotExist), the one
a cluster affinity's matchExpressions come to, so one rule decides both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from federator.model.label_requirement import LabelOperator, LabelRequirement

MAX_SELECTOR_CHARS = 4096
MAX_REQUIREMENTS = 32
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")


class SelectorError(ValueError):
    """A selector that is not one kubectl's equality-based grammar takes; the message says which part and why."""


def kubectl_form(requirement: LabelRequirement) -> str:
    """A requirement as kubectl's `-l` spells it (`key=value`, `key!=value`, `key`, `!key`): what it was parsed from."""
    key, op = requirement.key, requirement.operator
    if op is LabelOperator.EXISTS:
        return key
    if op is LabelOperator.DOES_NOT_EXIST:
        return f"!{key}"
    return f"{key}{'=' if op is LabelOperator.IN else '!='}{requirement.values[0]}"


@dataclass(frozen=True, slots=True)
class Selector:
    """Requirements that must all hold; none = every job."""

    requirements: tuple[LabelRequirement, ...] = ()

    def takes(self, labels: tuple[tuple[str, str], ...] | dict[str, str]) -> bool:
        have = dict(labels)
        return all(r.matches(have) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(kubectl_form(r) for r in self.requirements)


def _key_problem(key: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _PREFIX.match(prefix)):
        return f"label key {key[:80]!r}: its prefix must be a lower-case DNS subdomain of at most 253 characters"
    if not _NAME.match(name):
        return (f"label key {key[:80]!r}: a name must be 1 to 63 characters of letters, digits, '-', '_' and '.', "
                "beginning and ending with a letter or digit")
    return ""


def parse(text: str) -> Selector:
    """The selector `text` says ("" = every job); SelectorError naming the bad part otherwise."""
    if len(text) > MAX_SELECTOR_CHARS:
        raise SelectorError(f"must be at most {MAX_SELECTOR_CHARS} characters, got {len(text)}")
    if not text.strip():
        if text:
            raise SelectorError("is only blanks: give requirements such as app=x, or leave it empty for every job")
        return Selector()
    set_based = re.search(r"[^\s,=!]+\s+(not)?in\s*\([^)]*\)?", text)
    if set_based:  # before the commas split it: `team in (a,b)` quoted whole, not as `team in (a` (outside QA N7)
        _requirement(set_based.group(0))
    parts = text.split(",")
    if len(parts) > MAX_REQUIREMENTS:
        raise SelectorError(f"must have at most {MAX_REQUIREMENTS} requirements, got {len(parts)}")
    out: list[LabelRequirement] = []
    for part in (p.strip() for p in parts):
        out.append(_requirement(part))
    return Selector(tuple(out))


def _requirement(part: str) -> LabelRequirement:
    if not part:
        raise SelectorError("has an empty requirement (two commas, or one at an end)")
    if re.search(r"\s(not)?in\s*\(", part) or "(" in part:
        raise SelectorError(f"{part[:80]!r}: set-based requirements (in, notin) are not supported; use key=value, "
                            "key!=value, key or !key joined by commas")
    for op, sep in ((LabelOperator.NOT_IN, "!="), (LabelOperator.IN, "=="), (LabelOperator.IN, "=")):
        if sep in part:
            key, _, value = part.partition(sep)
            key, value = key.strip(), value.strip()
            if not key:
                raise SelectorError(f"{part[:80]!r}: no label key before {sep!r}")
            if problem := _key_problem(key):
                raise SelectorError(problem)
            if "=" in value or "!" in value or not _VALUE.match(value):
                raise SelectorError(f"label value {value[:80]!r} (of {key!r}): at most 63 characters of letters, "
                                    "digits, '-', '_' and '.', beginning and ending with a letter or digit")
            return LabelRequirement(key, op, (value,))
    negated = part.startswith("!")
    key = part[1:].strip() if negated else part
    if not key:
        raise SelectorError("'!' with no label key after it")
    if problem := _key_problem(key):
        raise SelectorError(problem)
    return LabelRequirement(key, LabelOperator.DOES_NOT_EXIST if negated else LabelOperator.EXISTS)


__all__ = ["MAX_REQUIREMENTS", "MAX_SELECTOR_CHARS", "Selector", "SelectorError", "kubectl_form", "parse"]
