"""Policy files: the operator's YAML for queues, quotas, score weights, preemption, regions.

`federator serve --policy FILE` and `federator sim --policy FILE` read it.
Parsing is pure (text in, SchedulerConfig out) and every problem names the
field at fault, all of them at once::

    queues:
      research:
        weight: 1
        quota: {accelerators: {H100: 64, A100: 200}, cpu: 2000, memory: 16Ti}
        maxPendingJobs: 5000           # Submit's back-pressure for this queue (else --max-pending-jobs-per-queue)
        maxPriority: 1000              # the highest spec.priority its jobs may ask (Submit refuses more)
        maxRunSeconds: 86400           # the longest its jobs run: their limit unless a job asks less
        ownerShare: true               # within a priority, the user holding least goes first (false: FIFO)
      serving: {weight: 2}
    defaultQueue: {weight: 1, maxPendingJobs: 1000, maxPriority: 0}   # queues not listed above
    scoreWeights: {Fragmentation: 3, CpuExcess: 3, Scarcity: 4, Price: 1, RegionLoad: 1, Locality: 3}
    preemption: {enabled: true, maxVictimsPerCycle: 10}
    reservations: {enabled: true, afterSeconds: 600, maxReservations: 3, maxHoldSeconds: 3600}   # gangs that waited
    rebalance: {maxMovesPerMinute: 6, quietSeconds: 600}   # serving replicas moved back near their users; 0: off
    regions:
      latencyMs:                       # symmetric; 0 within a region
        east: {central: 40, west: 120}
        central: {west: 70}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from federator.model import QuantityError, to_bytes, to_milli
from federator.scheduler.config import (
    PRIORITY_LIMIT,
    RUN_SECONDS_LIMIT,
    SCARCITY_SCALES,
    QueueConfig,
    Quota,
    RebalancePolicy,
    SchedulerConfig,
)
from federator.scheduler.plugins import DEFAULT_SCORE_WEIGHTS, SCORES
from federator.scheduler.reservation import ReservationPolicy
from federator.yamltext import YamlFileError, load_yaml_text, read_text

_TOP = ("queues", "defaultQueue", "scoreWeights", "preemption", "reservations", "regions", "maxPlacementsPerCycle",
        "tenancy", "scarcityScale", "rebalance")
# Fields of a queue that are not the scheduler's: who may use it. `security.authz` (access) and the
# Kubernetes controller (namespaceSelector) read and check them, and standalone Submit the namespaces its jobs go
# in (namespaces: security/namespaces.py); the scheduler ignores them.
_ACCESS_FIELDS = ("access", "namespaceSelector", "namespaces")

# What is wrong with a quota's accelerator model name, or None when it is known. The scheduler does not read the
# accelerator catalog (docs/architecture.md), so the edges that load a policy hand one in
# (`catalog.model_names.quota_model_problem`): a quota on a misspelled model would cap nothing (outside QA F8).
ModelCheck = Callable[[str], str | None]


class PolicyError(ValueError):
    """A policy file that cannot be used; lists every bad field."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(problems))


def load_policy(path: Path, *, models: ModelCheck | None = None) -> SchedulerConfig:
    try:
        text = read_text(path)
    except OSError as exc:
        raise PolicyError([f"file: {exc.strerror or exc}"], str(path)) from exc
    except ValueError as exc:  # not UTF-8 text
        raise PolicyError([f"file: {exc}"], str(path)) from exc
    return parse_policy(text, source=str(path), models=models)


def parse_policy(text: str, *, source: str = "", models: ModelCheck | None = None) -> SchedulerConfig:
    """A policy from its YAML; `models` checks each quota's accelerator model (None: any name is taken)."""
    try:
        doc = load_yaml_text(text)
    except YamlFileError as exc:
        raise PolicyError([f"document: {exc}"], source) from exc
    return policy_from_document(doc if doc is not None else {}, source=source, models=models)


def policy_from_document(doc: object, *, source: str = "", models: ModelCheck | None = None) -> SchedulerConfig:
    problems: list[str] = []

    def bad(where: str, what: str) -> None:
        problems.append(f"{where}: {what}")

    if not isinstance(doc, Mapping):
        raise PolicyError([f"document: must be a mapping, got {type(doc).__name__}"], source)
    for key in doc:
        if key not in _TOP:
            bad(str(key), f"is not a known field (known: {', '.join(_TOP)})")

    queues: dict[str, QueueConfig] = {}
    raw_queues = doc.get("queues") or {}
    if not isinstance(raw_queues, Mapping):
        bad("queues", "must map queue names to {weight, quota}")
    else:
        for name, body in raw_queues.items():
            q = _queue(body, f"queues.{name}", bad, models)
            if q is not None:
                queues[str(name)] = q
    default_queue = _queue(doc.get("defaultQueue") or {}, "defaultQueue", bad, models) or QueueConfig()

    weights = dict(DEFAULT_SCORE_WEIGHTS)
    raw_weights = doc.get("scoreWeights")
    if raw_weights is not None:
        if not isinstance(raw_weights, Mapping):
            bad("scoreWeights", "must map score plugin names to integer weights")
        else:
            weights = {}
            for name, w in raw_weights.items():
                if name not in SCORES:
                    bad(f"scoreWeights.{name}", f"is not a score plugin (known: {', '.join(SCORES)})")
                elif isinstance(w, bool) or not isinstance(w, int) or w < 0:
                    bad(f"scoreWeights.{name}", f"must be a non-negative integer, got {w!r}")
                else:
                    weights[str(name)] = w

    preemption, cap = True, 10
    raw_pre = doc.get("preemption") or {}
    if not isinstance(raw_pre, Mapping):
        bad("preemption", "must be a mapping {enabled, maxVictimsPerCycle}")
    else:
        enabled = raw_pre.get("enabled", True)
        if not isinstance(enabled, bool):
            bad("preemption.enabled", f"must be true or false, got {enabled!r}")
        else:
            preemption = enabled
        cap_raw = raw_pre.get("maxVictimsPerCycle", 10)
        if isinstance(cap_raw, bool) or not isinstance(cap_raw, int) or cap_raw < 0:
            bad("preemption.maxVictimsPerCycle", f"must be a non-negative integer, got {cap_raw!r}")
        else:
            cap = cap_raw
        for key in raw_pre:
            if key not in ("enabled", "maxVictimsPerCycle"):
                bad(f"preemption.{key}", "is not a known field (known: enabled, maxVictimsPerCycle)")

    reservations = _reservations(doc.get("reservations") or {}, bad)
    rebalance = _rebalance(doc.get("rebalance") or {}, bad)

    latency: dict[tuple[str, str], int] = {}
    raw_regions = doc.get("regions") or {}
    if not isinstance(raw_regions, Mapping):
        bad("regions", "must be a mapping {latencyMs}")
    else:
        for key in raw_regions:
            if key != "latencyMs":
                bad(f"regions.{key}", "is not a known field (known: latencyMs)")
        matrix = raw_regions.get("latencyMs") or {}
        if not isinstance(matrix, Mapping):
            bad("regions.latencyMs", "must map a region to {other region: milliseconds}")
        else:
            for a, row in matrix.items():
                if not isinstance(row, Mapping):
                    bad(f"regions.latencyMs.{a}", "must map other regions to milliseconds")
                    continue
                for b, ms in row.items():
                    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
                        bad(f"regions.latencyMs.{a}.{b}", f"must be a non-negative integer, got {ms!r}")
                    elif (str(b), str(a)) in latency and latency[(str(b), str(a))] != ms:
                        bad(f"regions.latencyMs.{a}.{b}", f"is {ms} but {b}.{a} says {latency[(str(b), str(a))]}")
                    else:
                        latency[(str(a), str(b))] = ms

    max_placements = doc.get("maxPlacementsPerCycle", 100_000)
    if isinstance(max_placements, bool) or not isinstance(max_placements, int) or max_placements < 1:
        bad("maxPlacementsPerCycle", f"must be a positive integer, got {max_placements!r}")
        max_placements = 100_000

    raw_scale = doc.get("scarcityScale", "auto")
    scales: tuple[float, ...] = SCARCITY_SCALES
    if raw_scale == "median":
        scales = (0.0,)
    elif not isinstance(raw_scale, bool) and isinstance(raw_scale, int | float) and 0 < raw_scale < float("inf"):
        scales = (float(raw_scale),)
    elif raw_scale != "auto":
        bad("scarcityScale", f"must be 'auto', 'median' or a positive number, got {raw_scale!r}")

    if problems:
        raise PolicyError(problems, source)
    return SchedulerConfig(score_weights=weights, queues=queues, default_queue=default_queue,
                           preemption=preemption, max_preemptions_per_cycle=cap,
                           region_latency_ms=latency, max_placements_per_cycle=max_placements,
                           scarcity_scales=scales, reservations=reservations, rebalance=rebalance,
                           multi_tenant=policy_is_multi_tenant(doc))


def policy_is_multi_tenant(doc: Mapping[str, Any]) -> bool:
    """Whether the policy says who may use what: a `tenancy` section, or an `access` list on any queue. Then
    priorities are bounded by default (`SchedulerConfig.max_priority`): tenants share the fleet; and a queue
    nobody declared is closed to all but admins unless defaultQueue has an access list (security/authz.py,
    rule `undeclared-queue`)."""
    queues = doc.get("queues") or {}
    bodies = [*(queues.values() if isinstance(queues, Mapping) else ()), doc.get("defaultQueue") or {}]
    return "tenancy" in doc or any(isinstance(b, Mapping) and "access" in b for b in bodies)


_RESERVATION_FIELDS = ("enabled", "afterSeconds", "maxReservations", "maxHoldSeconds")


def _reservations(body: Any, bad: Any) -> ReservationPolicy:
    """`reservations: {enabled, afterSeconds, maxReservations, maxHoldSeconds}` (scheduler/reservation.py);
    unset fields keep the defaults, and `enabled: false` is `maxReservations: 0`."""
    default = ReservationPolicy()
    if not isinstance(body, Mapping):
        bad("reservations", "must be a mapping {enabled, afterSeconds, maxReservations, maxHoldSeconds}")
        return default
    for key in body:
        if key not in _RESERVATION_FIELDS:
            bad(f"reservations.{key}", f"is not a known field (known: {', '.join(_RESERVATION_FIELDS)})")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        bad("reservations.enabled", f"must be true or false, got {enabled!r}")
        enabled = True
    after = body.get("afterSeconds", default.after_seconds)
    if isinstance(after, bool) or not isinstance(after, int | float) or not 0 <= after < float("inf"):
        bad("reservations.afterSeconds", f"must be a non-negative number of seconds, got {after!r}")
        after = default.after_seconds
    cap = body.get("maxReservations", default.max_reservations)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        bad("reservations.maxReservations", f"must be a non-negative integer, got {cap!r}")
        cap = default.max_reservations
    hold = body.get("maxHoldSeconds", default.max_hold_seconds)
    if isinstance(hold, bool) or not isinstance(hold, int | float) or not 0 < hold < float("inf"):
        bad("reservations.maxHoldSeconds", f"must be a positive number of seconds, got {hold!r}")
        hold = default.max_hold_seconds
    return ReservationPolicy(after_seconds=float(after), max_reservations=cap if enabled else 0,
                             max_hold_seconds=float(hold))


_REBALANCE_FIELDS = ("maxMovesPerMinute", "quietSeconds")


def _rebalance(body: Any, bad: Any) -> RebalancePolicy:
    """`rebalance: {maxMovesPerMinute, quietSeconds}` (server/rebalance.py); unset fields keep the defaults,
    and `maxMovesPerMinute: 0` turns moving serving replicas back near their users off."""
    default = RebalancePolicy()
    if not isinstance(body, Mapping):
        bad("rebalance", "must be a mapping {maxMovesPerMinute, quietSeconds}")
        return default
    for key in body:
        if key not in _REBALANCE_FIELDS:
            bad(f"rebalance.{key}", f"is not a known field (known: {', '.join(_REBALANCE_FIELDS)})")
    cap = body.get("maxMovesPerMinute", default.max_moves_per_minute)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        bad("rebalance.maxMovesPerMinute", f"must be a non-negative integer (0: off), got {cap!r}")
        cap = default.max_moves_per_minute
    quiet = body.get("quietSeconds", default.quiet_seconds)
    if isinstance(quiet, bool) or not isinstance(quiet, int | float) or not 0 <= quiet < float("inf"):
        bad("rebalance.quietSeconds", f"must be a non-negative number of seconds, got {quiet!r}")
        quiet = default.quiet_seconds
    return RebalancePolicy(max_moves_per_minute=cap, quiet_seconds=float(quiet))


def queue_from_document(body: object, *, where: str = "queue", source: str = "",
                        models: ModelCheck | None = None) -> QueueConfig:
    """One queue, `{weight, quota: {accelerators, cpu, memory}}`, checked as the policy file's queues are.

    Kubernetes Queue objects take the same shape; PolicyError lists every bad field under `where`.
    """
    problems: list[str] = []
    q = _queue(body, where, lambda w, what: problems.append(f"{w}: {what}"), models)
    if problems or q is None:
        raise PolicyError(problems or [f"{where}: must be a mapping {{weight, quota}}"], source)
    return q


def _queue(body: Any, where: str, bad: Any, models: ModelCheck | None = None) -> QueueConfig | None:
    if not isinstance(body, Mapping):
        bad(where, "must be a mapping {weight, quota}")
        return None
    for key in body:
        if key not in ("weight", "quota", "maxPendingJobs", "maxPriority", "maxRunSeconds", "ownerShare",
                       "allowedRegions", *_ACCESS_FIELDS):
            bad(f"{where}.{key}", "is not a known field (known: access, allowedRegions, maxPendingJobs, maxPriority, "
                "maxRunSeconds, namespaceSelector, namespaces, ownerShare, quota, weight)")
    weight = body.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
        bad(f"{where}.weight", f"must be a positive number, got {weight!r}")
        weight = 1
    quota = _quota(body.get("quota") or {}, f"{where}.quota", bad, models)
    cap = body.get("maxPendingJobs")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        bad(f"{where}.maxPendingJobs", f"must be a positive integer, got {cap!r}")
        cap = None
    top = body.get("maxPriority")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or abs(top) > PRIORITY_LIMIT):
        bad(f"{where}.maxPriority", f"must be an integer from -{PRIORITY_LIMIT:,} to {PRIORITY_LIMIT:,} (the range of "
                                    f"spec.priority), got {top!r}")
        top = None
    run = body.get("maxRunSeconds")
    if run is not None and (isinstance(run, bool) or not isinstance(run, int) or not 1 <= run <= RUN_SECONDS_LIMIT):
        bad(f"{where}.maxRunSeconds", f"must be an integer from 1 to {RUN_SECONDS_LIMIT} (seconds, 90 days: the "
                                      f"range of spec.maxRunSeconds), got {run!r}")
        run = None
    share = body.get("ownerShare", True)
    if not isinstance(share, bool):
        bad(f"{where}.ownerShare", f"must be true (within a priority, the user holding least goes first) or false "
                                   f"(submission order), got {share!r}")
        share = True
    fence = _allowed_regions(body.get("allowedRegions", []), f"{where}.allowedRegions", bad)
    return QueueConfig(weight=float(weight), quota=quota, max_pending_jobs=cap, max_priority=top,
                       max_run_seconds=run, owner_share=share, allowed_regions=fence)


_REGION_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _allowed_regions(value: Any, where: str, bad: Any) -> tuple[str, ...]:
    """A queue's fence (`allowedRegions`): region names, as agents' Hellos give them; () = any region."""
    if not isinstance(value, list) or not all(isinstance(r, str) and _REGION_NAME.match(r) for r in value):
        bad(where, f"must be a list of region names (lower-case DNS labels, as agents' Hellos give), got {value!r}")
        return ()
    if len(value) > 64:
        bad(where, f"at most 64 regions, got {len(value)}")
        return ()
    return tuple(dict.fromkeys(value))


def _quota(body: Any, where: str, bad: Any, models: ModelCheck | None) -> Quota:
    if not isinstance(body, Mapping):
        bad(where, "must be a mapping {accelerators, cpu, memory}")
        return Quota()
    for key in body:
        if key not in ("accelerators", "gpus", "cpu", "memory"):
            bad(f"{where}.{key}", "is not a known field (known: accelerators, cpu, memory)")
    if "accelerators" in body and "gpus" in body:
        bad(f"{where}.gpus", "is the old name of accelerators; give one of them")
    key = "gpus" if "gpus" in body else "accelerators"  # `gpus`: the name before vendors, kept working
    per_model: dict[str, int] = {}
    raw = body.get(key) or {}
    if not isinstance(raw, Mapping):
        bad(f"{where}.{key}", "must map accelerator models to counts, e.g. {H100: 64, Ascend910B: 128}")
    else:
        for model, n in raw.items():
            unknown = models(str(model)) if models is not None else None
            if unknown:
                bad(f"{where}.{key}.{model}", unknown)
            try:
                per_model[str(model)] = to_milli(n)
            except QuantityError as exc:
                bad(f"{where}.{key}.{model}", str(exc))
    cpu = memory = None
    try:
        cpu = to_milli(body["cpu"]) if "cpu" in body else None
    except QuantityError as exc:
        bad(f"{where}.cpu", str(exc))
    try:
        memory = to_bytes(body["memory"]) if "memory" in body else None
    except QuantityError as exc:
        bad(f"{where}.memory", str(exc))
    return Quota(accelerator_milli=per_model, cpu_milli=cpu, memory_bytes=memory)
