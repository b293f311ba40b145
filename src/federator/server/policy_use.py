"""A reloaded policy put in force: the scheduler's part, the authorizer's, and what the operator should know.

Why a module of its own: `server/policy_file.py` decides whether a file is a policy (pure reading); this decides
who is handed it, which differs by mode. Standalone, the file is the whole policy: the Federator takes its config
(between cycles: a cycle in flight keeps the config it was planned with, `CyclePlan.scheduler`) and the
Authorizer its tenancy. In Kubernetes mode the file is the base the Queue objects are laid over, so the Queue
controller re-lays them on the new base and hands the sum on, as it does when a Queue changes.

Every listener runs on the event loop (the poll task and the SIGHUP handler both do), as Submit and the cycle's
planning do, so no call sees half of a policy.

A reload changes nothing already accepted (docs/operators.md, "Changing the policy"): a queue removed with jobs
still unfinished keeps them; they run, and are placed, under defaultQueue's terms. That is what a restart with
the new file does, and refusing such a file instead would leave a ConfigMap the operator changed unread until
the queue drained, with nothing but a gauge to say so. It is said in a WARNING naming each queue and its count,
the count an operator needs before `federator cancel --queue Q --yes`.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

from federator.security.authz import Authorizer
from federator.server.federator import Federator
from federator.server.kept_room import KeptRoom
from federator.server.outside_regions import say_outside
from federator.server.policy_file import LoadedPolicy

if TYPE_CHECKING:
    from federator.backends.kube.host import KubeMode

log = logging.getLogger("federator.server")


def use_policy(old: LoadedPolicy, new: LoadedPolicy, *, fed: Federator, authz: Authorizer,
               kube: KubeMode | None = None) -> None:
    """Put `new` in force from the next cycle and the next call, whole or not at all.

    Why the rollback: the authorizer and the scheduler are swapped one after the other; if anything raises
    between, the authorizer would hold the new tenancy and the scheduler the old, and nothing would retry until
    the file changed again (0.7.0 review). So what was there is kept, put back on any exception, and the
    exception re-raised for PolicyFile.reload to report the reload as refused."""
    controller = kube.queues if kube is not None else None
    kept = (authz.base, authz.policy, fed.scheduler, controller.base if controller is not None else None)
    try:
        authz.base = new.tenancy
        if controller is not None:
            controller.rebase(new.config)  # the Queue objects over the new file: scheduler and authorizer
        else:
            authz.policy = new.tenancy
            fed.set_scheduler_config(new.config)
        _say_removed(old, new, fed)
        say_outside(fed.jobs.values(), fed.scheduler.config)  # a narrowed allowedRegions (server/outside_regions.py)
        sizing = KeptRoom.of(fed.limits.max_pending_jobs, len(fed.scheduler.config.queues)).sizing_problem()
    except BaseException:
        authz.base, authz.policy, fed.scheduler = kept[0], kept[1], kept[2]
        if controller is not None and kept[3] is not None:
            controller.base = kept[3]
        raise
    if controller is None and authz.policy != kept[1]:
        fed.history.policy_changed()  # Kubernetes mode: the Queue controller says so (queue_controller.py)
    if sizing:
        log.warning("%s", sizing)


def _say_removed(old: LoadedPolicy, new: LoadedPolicy, fed: Federator) -> None:
    removed = set(old.config.queues) - set(fed.scheduler.config.queues)
    if not removed:
        return
    unfinished = Counter(job.spec.queue for job in fed.jobs.values()
                         if job.spec.queue in removed and not job.phase.is_terminal)
    for queue in sorted(q for q in removed if unfinished[q]):
        log.warning("policy reload: queue %s is no longer declared and holds %d unfinished jobs: they run on, and "
                    "are placed, under defaultQueue's weight and quotas; new submits to it are taken as to any "
                    "undeclared queue. To stop them: federator cancel --queue %s --yes", queue, unfinished[queue],
                    queue)


__all__ = ["use_policy"]
