"""`spec.clusters` of a job file (a FederatedJob's too): read and checked, and written back.

Why its own module: jobfile.py is long, and the field is a concern of its own (model/cluster_affinity.py says
what it means). As the rest of the job file, every bad value is named by its field path, each list is bounded
(a selector is read at every placement of the job, for every cluster), and nothing is a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from federator.model import ClusterAffinity, LabelOperator, LabelRequirement

# names and labels as a Hello gives them (security/limits.py): what a job pins to is what a cluster can say
from federator.security.limits import LABEL_KEY, LABEL_VALUE, valid_cluster_name
from federator.termtext import shown

MAX_CLUSTER_NAMES = 64
"""At most this many names in spec.clusters.names (as jobfile.MAX_PREFERRED_REGIONS for regions)."""
MAX_SAME_AS = 16
"""At most this many jobs in spec.clusters.sameAs (as spec.dependsOn's keys: model/dependency.py)."""
MAX_SELECTOR_TERMS = 32
"""At most this many entries in each of matchLabels and matchExpressions."""
MAX_SELECTOR_VALUES = 64
"""At most this many values in one matchExpressions entry."""
FIELD = "spec.clusters"
KEYS = ("names", "sameAs", "selector")
SELECTOR_KEYS = ("matchExpressions", "matchLabels")
EXPRESSION_KEYS = ("key", "operator", "values")

Bad = Callable[[str, str], None]


def _unknown(value: Mapping[Any, Any], field: str, known: tuple[str, ...], bad: Bad) -> None:
    for key in value:
        if key not in known:
            bad(f"{field}.{str(key)[:63]}", f"is not a known field (known: {', '.join(known)})")


def parse_clusters(value: object, bad: Bad) -> ClusterAffinity:
    """spec.clusters: `names`, a `selector` (matchLabels, matchExpressions) and `sameAs` (jobs whose cluster it
    shares), ANDed; absent or empty = any."""
    if value is None:
        return ClusterAffinity()
    if not isinstance(value, Mapping):
        bad(FIELD, f"must be a mapping (names, selector), got {shown(value)}")
        return ClusterAffinity()
    _unknown(value, FIELD, KEYS, bad)
    names = _names(value.get("names", []), bad)
    same_as = _same_as(value["sameAs"], bad) if "sameAs" in value else ()
    selector = value.get("selector")
    if selector is None:
        return ClusterAffinity(names=names, same_as=same_as)
    if not isinstance(selector, Mapping):
        bad(f"{FIELD}.selector", f"must be a mapping (matchLabels, matchExpressions), got {shown(selector)}")
        return ClusterAffinity(names=names, same_as=same_as)
    _unknown(selector, f"{FIELD}.selector", SELECTOR_KEYS, bad)
    return ClusterAffinity(names=names, match_labels=_match_labels(selector.get("matchLabels", {}), bad),
                           match_expressions=_expressions(selector.get("matchExpressions", []), bad), same_as=same_as)


def _same_as(value: object, bad: Bad) -> tuple[str, ...]:
    """spec.clusters.sameAs: 1 to MAX_SAME_AS job keys (ids, namespace/name or names, as spec.dependsOn.jobs
    takes them: model/dependency.py `checked`), each named once; Submit resolves them to ids."""
    field = f"{FIELD}.sameAs"
    if value == []:  # written, and empty: the CRD refuses it too (minItems 1); left out, it bounds nothing
        bad(field, f"must name 1 to {MAX_SAME_AS} jobs (leave it out to share a cluster with none)")
        return ()
    if not isinstance(value, list):
        bad(field, f"must be a list of job ids or names, got {shown(value)}")
        return ()
    for i, key in enumerate(value):
        if not isinstance(key, str):
            bad(f"{field}[{i}]", f"must be a job id, namespace/name or name, got {shown(key)}")
            return ()
    if len(value) > MAX_SAME_AS:
        bad(field, f"names {len(value)} jobs; at most {MAX_SAME_AS}")
        return ()
    for i, key in enumerate(value):
        if not key or "," in key or len(key) > 512:
            bad(f"{field}[{i}]", f"{key[:80]!r} is not a job id, namespace/name or name")
            return ()
        if value.index(key) != i:
            bad(f"{field}[{i}]", f"{key[:80]!r} is named twice")
            return ()
    return tuple(value)


def _names(value: object, bad: Bad) -> tuple[str, ...]:
    field = f"{FIELD}.names"
    if not isinstance(value, list):
        bad(field, f"must be a list of cluster names, got {shown(value)}")
        return ()
    if len(value) > MAX_CLUSTER_NAMES:
        bad(field, f"at most {MAX_CLUSTER_NAMES} clusters, got {len(value)}")
        return ()
    wrong = [(i, n) for i, n in enumerate(value) if not isinstance(n, str) or not valid_cluster_name(n)]
    for i, name in wrong:
        bad(f"{field}[{i}]", f"must be a cluster name (a lower-case DNS label of at most 63 characters, as agents' "
                             f"Hellos give), got {shown(name)}")
    return () if wrong else tuple(dict.fromkeys(value))


def _match_labels(value: object, bad: Bad) -> tuple[tuple[str, str], ...]:
    field = f"{FIELD}.selector.matchLabels"
    if not isinstance(value, Mapping):
        bad(field, f"must be a mapping of label keys to values, got {shown(value)}")
        return ()
    if len(value) > MAX_SELECTOR_TERMS:
        bad(field, f"at most {MAX_SELECTOR_TERMS} labels, got {len(value)}")
        return ()
    out: list[tuple[str, str]] = []
    for key, label in value.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            bad(f"{field}[{str(key)[:63]}]", "must be a label key (an optional DNS prefix and '/', then a name of at "
                                            "most 63 characters)")
        elif not isinstance(label, str) or not LABEL_VALUE.match(label):
            bad(f"{field}[{key}]", f"must be a label value (at most 63 characters; quote a number or true), "
                                   f"got {shown(label)}")
        else:
            out.append((key, label))
    return tuple(sorted(out))


def _expressions(value: object, bad: Bad) -> tuple[LabelRequirement, ...]:
    field = f"{FIELD}.selector.matchExpressions"
    if not isinstance(value, list):
        bad(field, f"must be a list of {{key, operator, values}}, got {shown(value)}")
        return ()
    if len(value) > MAX_SELECTOR_TERMS:
        bad(field, f"at most {MAX_SELECTOR_TERMS} expressions, got {len(value)}")
        return ()
    out = [_expression(e, f"{field}[{i}]", bad) for i, e in enumerate(value)]
    return tuple(r for r in out if r is not None)


def _expression(value: object, field: str, bad: Bad) -> LabelRequirement | None:
    if not isinstance(value, Mapping):
        bad(field, f"must be a mapping (key, operator, values), got {shown(value)}")
        return None
    _unknown(value, field, EXPRESSION_KEYS, bad)
    key, op, values = value.get("key"), value.get("operator"), value.get("values", [])
    ok = True
    if not isinstance(key, str) or not LABEL_KEY.match(key):
        bad(f"{field}.key", f"must be a label key, got {shown(key)}")
        ok = False
    if not isinstance(op, str) or op not in {o.value for o in LabelOperator}:
        bad(f"{field}.operator", f"must be one of {', '.join(o.value for o in LabelOperator)}, got {shown(op)}")
        return None
    operator = LabelOperator(op)
    if not isinstance(values, list):
        bad(f"{field}.values", f"must be a list of at most {MAX_SELECTOR_VALUES} label values, got {shown(values)}")
        return None
    if len(values) > MAX_SELECTOR_VALUES:  # the count, as the other limits say it, not the list (outside QA N5)
        bad(f"{field}.values", f"at most {MAX_SELECTOR_VALUES} label values, got {len(values)}")
        return None
    wrong = [(i, v) for i, v in enumerate(values) if not isinstance(v, str) or not LABEL_VALUE.match(v)]
    for i, v in wrong:
        bad(f"{field}.values[{i}]", f"must be a label value (at most 63 characters; quote a number or true), "
                                    f"got {shown(v)}")
    if operator in (LabelOperator.IN, LabelOperator.NOT_IN) and not values:
        bad(f"{field}.values", f"{operator} needs at least one value")
        ok = False
    elif operator in (LabelOperator.EXISTS, LabelOperator.DOES_NOT_EXIST) and values:
        bad(f"{field}.values", f"{operator} takes no values")
        ok = False
    if not ok or wrong:
        return None
    return LabelRequirement(str(key), operator, tuple(dict.fromkeys(values)))


def clusters_document(affinity: ClusterAffinity) -> dict[str, Any]:
    """spec.clusters as a job file writes it ({} for none): what parse_clusters reads back to the same value."""
    out: dict[str, Any] = {}
    if affinity.names:
        out["names"] = list(affinity.names)
    selector: dict[str, Any] = {}
    if affinity.match_labels:
        selector["matchLabels"] = dict(affinity.match_labels)
    if affinity.match_expressions:
        selector["matchExpressions"] = [
            {"key": r.key, "operator": r.operator.value, **({"values": list(r.values)} if r.values else {})}
            for r in affinity.match_expressions]
    if selector:
        out["selector"] = selector
    if affinity.same_as:
        out["sameAs"] = list(affinity.same_as)
    return out


__all__ = ["MAX_CLUSTER_NAMES", "MAX_SAME_AS", "MAX_SELECTOR_TERMS", "MAX_SELECTOR_VALUES", "clusters_document",
           "parse_clusters"]
