"""Whether a model name an operator wrote (a queue's quota key) names a model the catalog knows.

Why: a quota on a model nobody has (`quota: {accelerators: {H1000: 64}}`) caps nothing, so the operator's typo
silently took the tenant's quota away (outside QA, new user F8). A job's model is checked against the catalog and
the fleet at Submit (server/fleet_models.py); a quota is checked where a policy enters the process: `serve
--policy`, `sim --policy` and Queue objects. Against the catalog only, not the fleet: when serve reads its policy
no member has reported yet, and a Queue must not turn valid and invalid as members come and go. A model of the
operator's own is declared in the catalog extension (`--accelerator-catalog`, Helm `acceleratorCatalog`), which
is where the agent learns to name it too.

The scheduler does not read the catalog (docs/architecture.md): the policy parser takes this check as a function
(`scheduler.policy.ModelCheck`) from its callers at the edges.
"""

from __future__ import annotations

import difflib
import re

from federator.catalog import Catalog, catalog

LISTED = 12  # models a refusal lists at most
_TOKENS = re.compile(r"[-_ ./]+")


def quota_model_problem(name: str, cat: Catalog | None = None) -> str | None:
    """What is wrong with `name` as a quota's model, or None when it selects a model of the catalog (by its name,
    its family or its words, as a job's model does: `H100` selects NVIDIA-H100-80GB-HBM3)."""
    cat = cat or catalog()
    if cat.selects(name):
        return None
    spellings = _spellings(cat)
    close = difflib.get_close_matches(name.upper(), list(spellings), n=1, cutoff=0.75)
    if close:
        hint = f"did you mean {spellings[close[0]]}?"
    else:
        names = sorted({m.family or m.name for m in cat.models()}, key=str.lower)
        more = f", and {len(names) - LISTED} more" if len(names) > LISTED else ""
        hint = f"known: {', '.join(names[:LISTED])}{more}"
    return (f"is not an accelerator model the catalog knows ({hint}); a quota on it would cap nothing. A model of "
            "your own goes in the catalog extension (--accelerator-catalog, Helm value acceleratorCatalog)")


def nearest_models(name: str, cat: Catalog | None = None, *, vendor: str = "", n: int = 3) -> list[str]:
    """Up to `n` names the catalog knows (models, families, their device words), of `vendor` if given, closest to
    `name` first: what a message offers for a model it does not know (a fleet's `NVIDIA-H100-80GB-HBM4`)."""
    cat = cat or catalog()
    spellings = _spellings(cat, vendor)
    return [spellings[c] for c in difflib.get_close_matches(name.upper(), list(spellings), n=n, cutoff=0.75)]


def _spellings(cat: Catalog, vendor: str = "") -> dict[str, str]:
    """Upper-cased name -> the name as written, for every name a user may write: models, families, and each word
    of a model's name that names a device (H100 of NVIDIA-H100-80GB-HBM3; not the vendor's or the memory's)."""
    out: dict[str, str] = {}
    for m in cat.models(vendor or None):
        for n in (m.name, m.family):
            if n:
                out.setdefault(n.upper(), n)
        for word in _TOKENS.split(m.name):
            if word and word.upper() != m.vendor.upper() and not word.upper().endswith("GB"):
                out.setdefault(word.upper(), word)
    return out


__all__ = ["LISTED", "nearest_models", "quota_model_problem"]
