"""Tables and documents for `federator get`: what a user reads."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import yaml

from federator.cli.cluster_view import CapacitySummary
from federator.cli.times import local_text
from federator.model import (
    BUILTIN_WORKLOAD_KINDS,
    PRICE_LABELS,
    ClusterCapacity,
    Job,
    format_accelerator_milli_free_of_total,
    format_free_of_total,
    format_job_accelerators,
    format_placements,
    parse_price,
    pool_unit,
    run_seconds,
    shortfall,
    waited,
)
from federator.model.cluster import CLAIMED_PRICE_LABEL, accelerator_milli_totals, left_out_text, vendor_totals
from federator.model.pod_sets import described
from federator.model.state_words import state_words
from federator.termtext import cell
from federator.timestamps import duration


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns; every cell's control and bidi characters written as escapes (termtext.cell): cells hold what
    members and users wrote, and a terminal must show it, not obey it."""
    rows = [[cell(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def cores(milli: int) -> str:
    """CPU milli-cores as cores, as a person reads them: 16, 0.5, 1099511627 (never 1.09951e+09)."""
    whole, rest = divmod(milli, 1000)
    return str(whole) if not rest else f"{milli / 1000:.3f}".rstrip("0")


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def job_wait(job: Job, now: float | None = None) -> float:
    """WAIT: what the job waits for now has waited since it was asked for, or its latest wait took (model.waited)."""
    return waited(job, time.time() if now is None else now)


def run_time(job: Job, now: float) -> str:
    """How long the job has run, over its attempts, and of its spec.maxRunSeconds ("1h0m5s/2h0m0s"): what a
    user watches before the federator stops it (server/run_limits.py); "-" for a job that never ran."""
    ran = duration(run_seconds(job, now)) if job.started_at or job.ran_seconds else "-"
    return f"{ran}/{duration(job.spec.max_run_seconds)}" if job.spec.max_run_seconds else ran


def phase_shown(job: Job) -> str:
    """PHASE: the job's phase, "Pending(Held)" while it is held (server/job_holds.py), so a held job shows at a
    glance, as kubectl's Held column shows it; `--phase Pending` and -o json/yaml still say Pending. A job that
    ended while held (cancelled) shows its phase alone: a hold is of a waiting job, and an ended one waits for
    nothing; its status.hold (-o yaml) stays, as the record of who held it (QA new56 N6)."""
    return f"{job.phase.value}(Held)" if job.hold is not None and not job.phase.is_terminal else job.phase.value


def restarts_shown(job: Job, now: float) -> str:
    """RESTARTS: how many times the job was queued to be placed again after a placement ended for a cause not its
    own (types.proto, Job.restarts), and the last one's code and how long ago, "1 (ClusterNotReady, 5m ago)", as
    kubectl's RESTARTS says "1 (5m ago)"; "0" for none. A gang placed again said only "4 replicas running on nv-b"
    (outside pretraining QA, P5)."""
    last = job.last_restart_reason
    budget = job.spec.failure_policy.max_restarts  # spec.failurePolicy: how much of it is spent, "1/2 on failure"
    spent = f"; {job.failure_restarts}/{budget} on failure" if budget else ""
    if not job.restarts or last is None:
        return f"{job.restarts} ({spent[2:]})" if budget else str(job.restarts)
    return f"{job.restarts} ({last.code.value}, {_age(max(0.0, now - job.last_restart_at))} ago{spent})"


def asked_accelerators(job: Job) -> str:
    """`get jobs -o wide`'s ACCELERATOR of a job not placed: each alternative per replica ('8 x nvidia H100 |
    8 x huawei Ascend910B'); a gang of pod sets at what each role asks and their total ('learner 2 x 8, rollout
    4 x 1, reward 1 x 1 nvidia H100 (21 in all)', as `get job NAME`'s "pod sets:" line), which read per
    pod at the largest ask ('8 x ...') though ACCELERATORS said 21 (model/pod_sets.py)."""
    alternatives = job.spec.alternatives()
    if not alternatives:
        return "-"
    if not job.spec.pod_sets:
        return " | ".join(a.describe() for a in alternatives)
    what = " | ".join(dict.fromkeys(a.describe().split(" x ", 1)[1] for a in alternatives))
    return described(job.spec.pod_sets).replace(" accelerators (", f" {what} (", 1)


def job_rows(jobs: Sequence[Job], *, wide: bool) -> tuple[list[str], list[list[str]]]:
    now = time.time()
    headers = ["JOB", "KIND", "QUEUE", "PHASE", "CLUSTER", "REGION", "ACCELERATORS", "WAIT", "RESTARTS"]
    if wide:
        headers += ["READY", "RUN", "USER", "WORKLOAD", "ACCELERATOR", "PLACEMENTS", "MESSAGE"]
    headers.append("REASON")
    arrays = any(j.spec.array is not None for j in jobs)  # an ARRAY column only where some job is a task of one
    if arrays:
        headers.insert(1, "ARRAY")
    rows = []
    for j in jobs:
        clusters = ",".join(dict.fromkeys(p.cluster for p in j.placements)) or "-"
        regions = ",".join(dict.fromkeys(p.region for p in j.placements)) or "-"
        gpus = format_job_accelerators(j)
        # Pending: why it waits; Placed or Running short of replicas (a lost part): how many wait, and why.
        reason = str(j.pending_reason) if j.pending_reason and j.phase.value == "Pending" else shortfall(j)
        if not wide and len(reason) > 110:
            reason = reason[:107] + "..."
        row = [j.job_id, j.spec.kind.value, j.spec.queue, phase_shown(j), clusters, regions, gpus,
               _age(job_wait(j, now)), restarts_shown(j, now)]
        if wide:
            models = ",".join(dict.fromkeys(f"{p.accelerator_vendor}/{p.accelerator_model}".lstrip("/")
                                            for p in j.placements if p.accelerator_model))
            if not models:
                models = asked_accelerators(j)
            placements = format_placements(j) or "-"
            owner = j.spec.recorded_user or "-"  # who submitted it (security/authz.py)
            # Replicas ready to serve of those asked, as kubectl's READY "2/4" (Job.replicas_ready): the number
            # a job short on a member (pods pending, refused, not ready) showed only in prose before (F2).
            ready = f"{j.replicas_ready}/{j.spec.replicas}" if j.phase.is_active else "-"
            row += [ready, run_time(j, now), owner, j.spec.workload_kind.split(".", 1)[0] or "-", models, placements,
                    j.message or "-"]
        row.append(reason)
        if arrays:  # Slurm's JOBID column of a task, 1234_7: the array's id and the task's index
            task = j.spec.array
            row.insert(1, f"{task.array_id}[{task.task_id}]" if task is not None else "-")
        rows.append(row)
    return headers, rows


def cluster_rows(clusters: Sequence[dict[str, Any]], *, wide: bool) -> tuple[list[str], list[list[str]]]:
    headers = ["CLUSTER", "REGION", "STATE", "ACCELERATORS FREE/TOTAL", "CPUS FREE", "PLACEMENTS", "ORPHANS",
               "REPORT AGE"]
    if wide:
        headers += ["PRICE", "GANG ADMISSION", "VENDORS (free/total)", "MODELS (free/total)", "WORKLOAD KINDS",
                    "LEFT OUT", "CORDONED BY"]
    rows = []
    now = time.time()
    for c in clusters:
        cap: ClusterCapacity | CapacitySummary | None = c["capacity"]  # the FULL view's, or the BASIC view's
        # Whole-device equivalents (a 1g.10gb MIG partition 0.125), as a job's ACCELERATORS and the usage bill
        # count; MODELS below counts each pool's own units and says "partitions" where they are not devices.
        gpus = format_accelerator_milli_free_of_total(*accelerator_milli_totals(cap.accelerator_pools)) \
            if cap else "-"
        cpus = cores(cap.cpu_milli_free) if cap else "-"
        # No new work for now: cordoned by an operator (server/cordons.py), quarantined (server/quarantine.py), or
        # its agent cannot reach the member's API server (server/member_health.py); -o json gives the words. And a
        # second agent with its name being refused (server/duplicates.py): not a state of its own, a fault to fix;
        # likewise a report over its provider's maxAccelerators, taken clamped (server/over_bound.py), and reports
        # refused since the last one taken (server/refused_reports.py).
        # A provider's maintenance (server/maintenance.py) is a cordon of its own: the same word, its reason in -o wide.
        # The same words as a MemberCluster's status.stateSummary (kubectl get mc): model/state_words.py.
        state = state_words(c["state"], cordoned=bool(c.get("cordoned") or c.get("maintenance")),
                            quarantined=bool(c.get("quarantined_until")),
                            unreachable=bool(c.get("member_unreachable")),
                            duplicate_agent=bool(c.get("duplicate_agent")), over_bound=bool(c.get("over_bound")),
                            reports_refused=bool(c.get("reports_refused")),
                            drain_jobs_left=int(c.get("drain_jobs_left") or 0) if c.get("draining") else None,
                            maintenance_ahead=bool(c.get("window_from")) and not c.get("cordoned"))
        # placements of jobs the store has no record of, held for --orphan-grace (server/orphans.py): `federator
        # cancel --orphans` ends them now
        row = [c["name"], c["region"], state, gpus, cpus, str(c["placements"]), str(c.get("orphan_placements") or 0),
               _age(c.get("report_age_seconds") or max(0.0, now - c["last_report_at"]))  # the federator's clock
               if c["last_report_at"] else "-"]
        if wide:
            # what spec.prefer: cheapest orders by (scheduler/cheapest.py): its label, as the federator reads it,
            # and the claim its provider's minPrice/maxPrice (trust file) took another price for (secqa61 M1)
            labels = c.get("labels") or {}
            raw = next((labels[k] for k in PRICE_LABELS if k in labels), None)
            price = parse_price(raw) if raw is not None else None
            claimed = labels.get(CLAIMED_PRICE_LABEL)
            row.append((f"{price:g}/accelerator-hour" if price is not None else "-")
                       + (f" (claims {claimed[:20]})" if claimed else ""))
            row.append(c.get("gang_admission") or "-")
            vendors = ", ".join(f"{v} {format_accelerator_milli_free_of_total(free, total)}"
                                for v, (free, total) in vendor_totals(cap.accelerator_pools).items()) if cap else ""
            models = ", ".join(f"{p.accelerator_model} "
                               + format_free_of_total(p.free_accelerators, p.total_accelerators,
                                                      p.quota_held_accelerators, pool_unit(p.sharing))
                               for p in cap.accelerator_pools) if cap else ""
            row += [vendors or "-", models or "-"]
            row.append(",".join(sorted(k.split(".", 1)[0] for k in cap.workload_kinds or BUILTIN_WORKLOAD_KINDS))
                       if cap else "-")
            # devices its agent sees but does not offer, and why (agent.proto LeftOutDevices): why it offers less
            row.append(left_out_text(cap.left_out) if cap and cap.left_out else "-")
            row.append(cordoned_by(c) or "-")
        rows.append(row)
    return headers, rows


def cordoned_by(c: dict[str, Any]) -> str:
    """Who keeps a cluster's new work off and why: an admin's cordon, its provider's maintenance, or both
    (either holds it: server/maintenance.py); "" when neither does."""
    said = []
    if c.get("cordoned") or c.get("window_from"):  # a maintenance window too, before it begins
        said.append(f"{c.get('cordoned_by') or 'an admin'}" + (f": {c['cordon_reason']}" if c.get("cordon_reason")
                                                                 else "") + window_text(c))
    if c.get("maintenance"):
        said.append(f"provider maintenance: {c['maintenance']}")
    if c.get("draining"):  # server/drains.py: its words name who drained it, and why
        said.append(f"{c['draining']} ({int(c.get('drain_jobs_left') or 0)} job(s) left)")
    return "; ".join(said)


def window_text(c: dict[str, Any]) -> str:
    """A cluster's maintenance window as -o wide says it (" (window 2026-12-08T08:00:00+01:00 to ...)"), in the
    local zone as the CLI's times are; "" when it has none."""
    if not c.get("window_from"):
        return ""
    until = local_text(c["window_until"]) if c.get("window_until") else "uncordon"
    return f" (window {local_text(c['window_from'])} to {until})"


def dump(doc: Any, fmt: str, *, stream: bool = False) -> str:
    """`doc` as JSON (keys sorted) or YAML (keys in order); with `stream`, a list as YAML documents one after the
    other (`---` between), as `kubectl apply -f` and `federator submit -f` read several objects."""
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=True)
    if stream and isinstance(doc, list):
        return yaml.safe_dump_all(doc, sort_keys=False).rstrip()
    return yaml.safe_dump(doc, sort_keys=False).rstrip()
