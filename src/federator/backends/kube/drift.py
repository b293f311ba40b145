"""The agent owns what it made on the member: what of a placement's object was changed there, and the patch back.

Outside inference team F4: `kubectl set image` on a placement's Deployment, or removing its pod template's
`nvidia.com/gpu.product` node selector (the model pin the federator reserved and bills), was never reverted nor
reported, and `kubectl scale lws` made a second group of pods nobody had placed. The agent already scaled a
Deployment or StatefulSet back; this module extends that to every field the agent rendered, on every kind.

What the agent rendered: the object as it created it (`record`), kept in the agent's memory while it runs, and on
the object itself in the annotation `RECORD_ANNOTATION` (its spec, labels and annotations as JSON), so an agent
restarted after the edit still knows what it made. The agent cannot ask the federator for the job's spec again
(agent.proto re-sends no Launch for a placement the member holds), so the member is where the record can live. A
record changed on the member while the agent runs is drift like any other field (the agent's memory says what it
was); one changed while no agent ran is believed: whoever may rewrite the record may rewrite the object, and the
member's RBAC, not this module, is what stops them.

How it is compared (`drifted`): a subset comparison, not server-side apply. Only what the agent rendered is
compared, so what the API server and the kinds' webhooks default (`imagePullPolicy`, `terminationMessagePath`,
a Deployment's `strategy`, JobSet's `successPolicy`, a Job's `selector` and controller labels) is not drift, nor
is a label or annotation someone adds (`kubectl rollout restart`'s). Why not SSA with the agent's field manager
and force: SSA puts back what the agent applied but leaves what another manager added where the agent owns nothing
(a second container, an env var, a toleration: a program or a node the federator never placed), the agent made
its objects with create, not apply, so it owns no field by SSA's book (a first forced apply would take the fields,
not judge them), and a CRD's embedded pod template has the list semantics its generator gave it. Lists are
compared entry by entry: an entry added or removed is drift (no defaulting adds entries to a template's lists).

What is never drift (`_skipped`), because another legitimate writer owns it:
- the suspend field of a kind that has one (`admission.SUSPEND_FIELD`): the agent itself suspends in Kueue mode
  and Kueue (or an operator pausing work) flips it;
- in Kueue mode (`kueue=True`), what Kueue writes on admission (its `RunWithPodSetsInfo`): node selectors and pod
  template labels and annotations it adds (extra keys are never drift anyway), tolerations it appends, scheduling
  gates, a TrainJob's pod spec overrides it appends, and a Job's `spec.parallelism` (partial admission).
A member's HorizontalPodAutoscaler on a Deployment writes `spec.replicas`: that is drift (the federator books the
placement's replicas), and `RevertBudget` stops the fight: after `MAX_REVERTS` reverts of one object within
`WINDOW_SECONDS` the agent gives that object up and says so once at ERROR.

An object without a record (made by an agent before records) keeps the one field agents guarded then: a
Deployment's or StatefulSet's `spec.replicas`, as its replica annotation says. Each revert is logged at WARNING,
naming the placement, the object and the fields with what the agent rendered and what it found; no Kubernetes
Event is written: the agent writes none on a member (its RBAC creates no Events; events.py is the federator's,
on FederatedJobs in the host).

No I/O: `DriftGuard` keeps the baselines and the budget; the backend (backend.py) gives it the objects its
informers see and sends the patches it answers.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from federator.backends.kube.admission import SUSPEND_FIELD, group_kind
from federator.backends.kube.workloads.adapter import expected_pods
from federator.backends.kube.workloads.common import REPLICAS_ANNOTATION

log = logging.getLogger("federator.agent.kube")
Obj = dict[str, Any]

RECORD_ANNOTATION = "federator.io/rendered"
"""The annotation holding what the agent rendered for the object (JSON: spec, labels, annotations)."""
RECORD_LIMIT = 128 * 1024
"""The largest record the agent keeps on an object (the API server takes 256 KiB of annotations in all): a larger
object is guarded from the agent's memory only, until it restarts."""
MAX_REVERTS = 5
WINDOW_SECONDS = 600.0
_KUEUE_EXTRAS = frozenset({"tolerations", "podSpecOverrides", "podTemplateOverrides"})  # lists Kueue appends to
_KUEUE_OWNED = frozenset({"schedulingGates"})
_QUANTITY_MAPS = frozenset({"requests", "limits", "overhead"})
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|n|u|[eE][+-]?[0-9]+)?$")
_SCALE = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(1000),
          "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"),
          "E": Decimal("1e18"), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
          "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60)}
_ABSENT = object()


@dataclass(frozen=True, slots=True)
class Drift:
    """One field the member's object holds otherwise than the agent rendered it."""

    path: str  # as shown: "spec.template.spec.containers[server].image", "...nodeSelector[nvidia.com/gpu.product]"
    want: Any  # what the agent rendered
    have: Any  # what the member holds (`None` for a field removed)
    steps: tuple[str | int, ...] = ()  # the keys (and list indexes) that lead to it

    def __str__(self) -> str:
        return f"{self.path}: {_short(self.want)} -> {_short(self.have)}"


def record(manifest: Obj) -> Obj:
    """`manifest` (about to be created) with its record annotation; without one when the record would be too big.
    A record the job's own workload carried never stays: it would say what the agent must revert to."""
    out = copy.deepcopy(manifest)
    annotations = out.setdefault("metadata", {}).setdefault("annotations", {})
    annotations.pop(RECORD_ANNOTATION, None)
    text = json.dumps(_baseline_of(out), separators=(",", ":"), sort_keys=True)
    if len(text) <= RECORD_LIMIT:
        annotations[RECORD_ANNOTATION] = text
    return out


def recorded(obj: Mapping[str, Any]) -> Obj | None:
    """What the agent rendered for a live object, from its record (the record itself among its annotations);
    None when it has none. ValueError when it has one that is not a record."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(RECORD_ANNOTATION)
    if text is None:
        return None
    try:
        data = json.loads(str(text))
    except ValueError as exc:
        raise ValueError(f"annotation {RECORD_ANNOTATION} is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("spec"), dict) \
            or not all(isinstance(data.get(k, {}), dict) for k in ("labels", "annotations")):
        raise ValueError(f"annotation {RECORD_ANNOTATION} is not a record of a spec, labels and annotations")
    return _with_record({"metadata": {"labels": data.get("labels") or {}, "annotations": data.get("annotations") or {}},
                         "spec": data["spec"]}, str(text))


def baseline(manifest: Mapping[str, Any]) -> Obj:
    """What of a created manifest the agent compares (its spec, labels and annotations, the record's too)."""
    base = _baseline_of(manifest)
    text = ((manifest.get("metadata") or {}).get("annotations") or {}).get(RECORD_ANNOTATION)
    return _with_record({"metadata": {"labels": base["labels"], "annotations": base["annotations"]},
                         "spec": base["spec"]}, text)


def rerecorded(base: Mapping[str, Any], patch: Mapping[str, Any]) -> tuple[Obj, Obj]:
    """A merge patch the agent itself sends (a Resize), with the record updated to match, and the new baseline:
    the record must follow the agent's own changes, or a restarted agent would put the old ones back."""
    merged = _merged(base, patch)
    annotations = merged.setdefault("metadata", {}).setdefault("annotations", {})
    if RECORD_ANNOTATION not in annotations:
        return dict(patch), merged
    annotations.pop(RECORD_ANNOTATION)
    text = json.dumps(_baseline_of(merged), separators=(",", ":"), sort_keys=True)
    out = _merged(dict(patch), {"metadata": {"annotations": {RECORD_ANNOTATION: text}}})
    return out, _with_record(merged, text)


def drifted(want: Mapping[str, Any], live: Mapping[str, Any], *, kueue: bool = False) -> list[Drift]:
    """Every field of `want` (a `baseline`) the live object holds otherwise, in the order of the object.

    Subset semantics: a mapping key the agent did not render is not compared (defaults, others' labels); a
    rendered value that is empty or false matches an absent field (the API server drops them); quantities in a
    container's requests and limits compare by value ("500m" is "0.5"); lists compare entry by entry (see the
    module doc for the lists and fields Kueue owns in Kueue mode, and the suspend field)."""
    skipped = _skipped(live, kueue)
    out: list[Drift] = []
    meta, have_meta = want.get("metadata") or {}, live.get("metadata") or {}
    for part in ("labels", "annotations"):
        _compare(meta.get(part) or {}, have_meta.get(part) or {}, ("metadata", part), f"metadata.{part}", out,
                 skipped, kueue)
    _compare(want.get("spec") or {}, live.get("spec") or {}, ("spec",), "spec", out, skipped, kueue)
    return out


def revert_patch(want: Mapping[str, Any], live: Mapping[str, Any], drifts: list[Drift], *,
                 kueue: bool = False) -> Obj:
    """The JSON merge patch that puts every drifted field back as rendered: a mapping's key by itself, a list
    whole (merge patches replace lists), as rendered, with what Kueue appended kept in Kueue mode. The live
    object's uid is a precondition (a patch never lands on another object of the same name)."""
    patch: Obj = {}
    for d in drifts:
        cut = next((i for i, s in enumerate(d.steps) if isinstance(s, int)), len(d.steps))  # up to its list
        steps = [str(s) for s in d.steps[:cut]]
        node: Any = want
        have: Any = live
        target = patch
        for i, step in enumerate(steps):
            node = node.get(step) if isinstance(node, Mapping) else None
            have = have.get(step) if isinstance(have, Mapping) else None
            if isinstance(node, list) or i == len(steps) - 1:
                value = copy.deepcopy(node)
                if isinstance(node, list) and kueue and step in _KUEUE_EXTRAS and isinstance(have, list):
                    value += [copy.deepcopy(h) for h in have if not any(_same(w, h, kueue) for w in node)]
                target[step] = value
                break
            target = target.setdefault(step, {})
    uid = (live.get("metadata") or {}).get("uid")
    if uid:
        patch.setdefault("metadata", {})["uid"] = uid
    return patch


@dataclass(slots=True)
class RevertBudget:
    """How many times the agent reverts one object before it stops fighting whatever changes it back (a member's
    HPA, an operator's controller): `MAX_REVERTS` within `WINDOW_SECONDS`, then never again in this process."""

    max_reverts: int = MAX_REVERTS
    window: float = WINDOW_SECONDS
    clock: Callable[[], float] = field(default=lambda: 0.0)
    _times: dict[str, list[float]] = field(default_factory=dict)
    _given_up: set[str] = field(default_factory=set)

    def take(self, key: str) -> bool | None:
        """True: revert now; False: the budget ran out now (say so, once); None: given up before (say nothing)."""
        if key in self._given_up:
            return None
        now = self.clock()
        times = [t for t in self._times.get(key, []) if now - t < self.window]
        if len(times) >= self.max_reverts:
            self._given_up.add(key)
            self._times.pop(key, None)
            return False
        self._times[key] = [*times, now]
        return True

    def forget(self, key: str) -> None:
        self._times.pop(key, None)
        self._given_up.discard(key)


class DriftGuard:
    """What the agent rendered for each placement it runs here, and whether a live object strayed from it.

    No I/O: the backend gives it every object its informers see (`check`) and sends the patch it answers."""

    def __init__(self, *, kueue: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self.kueue = kueue
        self.budget = RevertBudget(clock=clock)
        self._baselines: dict[str, Obj] = {}  # placement id -> what the agent rendered (`baseline`)
        self._unreadable: set[str] = set()  # placements whose record was said to be unreadable

    def launched(self, pid: str, manifest: Mapping[str, Any]) -> None:
        """The agent created `manifest` (as `record` marked it) for the placement."""
        self._baselines[pid] = baseline(manifest)

    def resized(self, pid: str, obj: Mapping[str, Any], patch: Mapping[str, Any]) -> Obj:
        """The agent's own patch of the object (a Resize), with its record updated; remembered as rendered."""
        base = self._baseline(pid, obj)
        if base is None:
            return dict(patch)
        out, self._baselines[pid] = rerecorded(base, patch)
        return out

    def forget(self, pid: str) -> None:
        self._baselines.pop(pid, None)
        self._unreadable.discard(pid)
        self.budget.forget(pid)

    def check(self, pid: str, obj: Mapping[str, Any]) -> Obj | None:
        """The merge patch that reverts `obj` to what the agent rendered, None when nothing strayed (or the agent
        gave the object up: `RevertBudget`). Logs the revert at WARNING, naming the fields, and giving up at ERROR."""
        base = self._baseline(pid, obj)
        if base is None:
            return None
        drifts = drifted(base, obj, kueue=self.kueue)
        if not drifts:
            return None
        what = f"{obj.get('kind')} {_key(obj)}"
        allowed = self.budget.take(pid)
        if allowed is None:
            return None
        if not allowed:
            log.error("placement %s: %s keeps changing behind the agent's back (%s), %d times within %gs: something "
                      "else on the member writes it (an autoscaler, a controller); the agent stops reverting it "
                      "until it restarts", pid, what, "; ".join(map(str, drifts)), self.budget.max_reverts,
                      self.budget.window)
            return None
        log.warning("placement %s: %s changed behind the agent's back (%s); changing it back as the agent made it",
                    pid, what, "; ".join(map(str, drifts)))
        return revert_patch(base, obj, drifts, kueue=self.kueue)

    def _baseline(self, pid: str, obj: Mapping[str, Any]) -> Obj | None:
        """Known from launch or an earlier sight, else read from the object's record (and kept: later changes to
        the record are drift), else a replicas-only baseline for an older agent's Deployment or StatefulSet."""
        if (known := self._baselines.get(pid)) is not None:
            return known
        try:
            found = recorded(obj)
        except ValueError as exc:
            if pid not in self._unreadable:
                self._unreadable.add(pid)
                log.warning("placement %s: %s %s: %s; only its replicas are kept as the agent made them", pid,
                            obj.get("kind"), _key(obj), exc)
            found = None
        if found is None and obj.get("apiVersion") == "apps/v1" and obj.get("kind") in ("Deployment", "StatefulSet") \
                and (want := expected_pods(obj, default=-1)) >= 0:
            found = replicas_baseline(want)
        if found is not None:
            self._baselines[pid] = found
        return found


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


# -- comparing -----------------------------------------------------------------------


def _skipped(live: Mapping[str, Any], kueue: bool) -> frozenset[tuple[str, ...]]:
    suspend = SUSPEND_FIELD.get(group_kind(live))
    out = {tuple(suspend)} if suspend else set()
    if kueue and group_kind(live) == ("batch", "Job"):
        out.add(("spec", "parallelism"))
    return frozenset(out)


def _compare(want: Any, have: Any, at: tuple[str | int, ...], shown: str, out: list[Drift],
             skipped: frozenset[tuple[str | int, ...]], kueue: bool) -> None:
    if at in skipped or (kueue and at[-1] in _KUEUE_OWNED):
        return

    def drift(have: Any) -> None:
        out.append(Drift(shown, want, None if have is _ABSENT else have, at))

    if isinstance(want, Mapping):
        if have is _ABSENT:
            have = {}  # each rendered key is missing: said one by one
        if not isinstance(have, Mapping):
            drift(have)
            return
        for key, value in want.items():
            key = str(key)
            _compare(value, have.get(key, _ABSENT), (*at, key),
                     f"{shown}[{key}]" if "." in key or "/" in key else f"{shown}.{key}", out, skipped, kueue)
        return
    if isinstance(want, list):
        if have is _ABSENT and not want:
            return
        if not isinstance(have, list):
            drift(have)
        elif kueue and at[-1] in _KUEUE_EXTRAS:  # Kueue appends: each rendered entry must be there still
            if any(not any(_same(w, h, kueue) for h in have) for w in want):
                drift(have)
        elif len(want) != len(have):
            drift(have)
        else:
            for i, (w, h) in enumerate(zip(want, have, strict=True)):
                _compare(w, h, (*at, i), f"{shown}[{_entry(w, i)}]", out, skipped, kueue)
        return
    if have is _ABSENT:
        if want not in (None, False, 0, ""):
            drift(have)
        return
    if want != have and not (len(at) > 1 and at[-2] in _QUANTITY_MAPS and _quantity(want) is not None
                             and _quantity(want) == _quantity(have)):
        drift(have)


def _same(want: Any, have: Any, kueue: bool) -> bool:
    found: list[Drift] = []
    _compare(want, have, ("",), "", found, frozenset(), kueue)
    return not found


def _entry(value: Any, index: int) -> str:
    """A list entry's name in a path: a container's `name` reads better than its index."""
    name = value.get("name") if isinstance(value, Mapping) else None
    return name if isinstance(name, str) and name and "]" not in name else str(index)


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    m = _QUANTITY.match(str(value).strip())
    if not m:
        return None
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return None
    suffix = m.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SCALE[suffix]


# -- records ---------------------------------------------------------------------------


def _baseline_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    meta = manifest.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != RECORD_ANNOTATION}
    return {"labels": dict(meta.get("labels") or {}), "annotations": annotations,
            "spec": copy.deepcopy(dict(manifest.get("spec") or {}))}


def _with_record(base: Obj, text: object) -> Obj:
    if text is not None:
        base["metadata"]["annotations"] = {**base["metadata"]["annotations"], RECORD_ANNOTATION: str(text)}
    return base


def _merged(base: Mapping[str, Any], patch: Mapping[str, Any]) -> Obj:
    """RFC 7386: `patch` merged over `base` (a None removes the key)."""
    out: Obj = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _short(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(value, separators=(",", ":"), sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def replicas_baseline(want: int) -> Obj:
    """The baseline of an object without a record (made by an agent before records): its `spec.replicas` as its
    replica annotation says, the one field agents guarded then."""
    return {"metadata": {"annotations": {REPLICAS_ANNOTATION: str(want)}}, "spec": {"replicas": want}}


__all__ = ["MAX_REVERTS", "RECORD_ANNOTATION", "RECORD_LIMIT", "WINDOW_SECONDS", "Drift", "DriftGuard", "RevertBudget",
           "baseline",
           "drifted", "record", "recorded", "replicas_baseline", "rerecorded", "revert_patch"]
