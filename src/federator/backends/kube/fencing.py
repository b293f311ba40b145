"""Fencing: a replica that may have lost the leader Lease writes nothing more to the host cluster.

Why: leader election alone does not stop a deposed leader's writes. A leader paused (a SIGSTOP, a long GC, a VM
frozen) past its Lease, then resumed, still held status writes queued in its writer threads and Events in its
recorder, and its stop path flushed them over the new leader's (outside QA haqa63 FA: a FederatedJob's Succeeded
status set back to "Placed ... not started", which the next leader launched again). Two fences, as Kubernetes
controllers build them:

1. By this replica's own clock (`Fence.holds`): before each write the writer asks whether the time since its last
   successful renewal is below the renew deadline, on a monotonic clock (which runs on through a SIGSTOP, so a
   resumed process knows at once). Once the Lease is lost, or may be, the queued writes are dropped, not flushed:
   the new leader rebuilds every job from the FederatedJobs and the agents' re-sync, and nothing a user applied is
   lost, since a FederatedJob is its own object.
2. By the API server (`Fence.confirm`, used by the store on a 409): each status write carries the resourceVersion
   the store last saw of its object, so a write prepared before a pause and sent after it (the check above passed
   just before the pause) is refused if anyone wrote the object meanwhile. On such a refusal the store writes
   again only if the Lease, read afresh, is still this replica's and renewed within the renew deadline; otherwise
   it drops the write and this replica steps down (`step_down`).

Without leader election (one replica, `--no-leader-elect`) the fence always holds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from federator.backends.kube.api import LEASES, NotFoundError
from federator.backends.kube.leader import LeaderElector
from federator.store.errors import StoreUnavailable

log = logging.getLogger("federator.kube.fencing")


class Deposed(StoreUnavailable):
    """A write not sent: this replica no longer holds the leader Lease (or may not). The caller hears UNAVAILABLE
    (a Submit is not acknowledged), and the new leader rebuilds from the FederatedJobs."""


class Fence:
    """Whether this replica may still write to the host cluster (module docstring)."""

    def __init__(self, elector: LeaderElector | None) -> None:
        self.elector = elector
        self.deposed = False  # stepped down: no write is sent again, whatever the clock says
        self.dropped = 0  # writes not sent for it (status writes, Events, status fields)
        # Called (from any thread) when a write found the Lease lost: KubeMode stops the replica, as a failed
        # renewal does (set by KubeMode.start).
        self.on_lost: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._said = False

    def holds(self) -> bool:
        """True while this replica holds the Lease by its own clock: leading, not deposed, and its last successful
        renewal started less than the renew deadline ago (monotonic). Cheap: asked before every write."""
        if self.deposed:
            return False
        if self.elector is None:
            return True
        return self.elector.leading and self.elector.time_left() > 0

    def confirm(self) -> bool:
        """Read the Lease afresh (blocking): True if it still names this replica and its renewTime is within the renew
        deadline of now, and `holds` agrees. A read that fails raises KubeError: nothing is known, nothing decided."""
        if not self.holds():
            return False
        if self.elector is None:
            return True
        cfg = self.elector.cfg
        try:
            lease = self.elector.api.get(LEASES, cfg.name, cfg.namespace)
        except NotFoundError:
            return False
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != cfg.identity:
            return False
        renewed = _seconds(spec.get("renewTime"))
        # renewTime is this replica's own wall clock at its renewal, read against the same clock now
        return renewed is not None and self.elector.wall() - renewed < cfg.renew_deadline and self.holds()

    def step_down(self, why: str) -> None:
        """No write is sent from now on, and the replica stops (`on_lost`), once however many writers find it."""
        with self._lock:
            if self.deposed:
                return
            self.deposed = True
        log.error("fencing: %s; this replica writes nothing more and steps down", why)
        self.on_lost()

    def drop(self, what: str, count: int = 1) -> None:
        """Count writes not sent for the fence; said once (the stop path may drop hundreds)."""
        with self._lock:
            self.dropped += count
            said, self._said = self._said, True
        if not said:
            log.warning("fencing: %s not written: this replica no longer holds the leader Lease (or may not); the "
                        "new leader rebuilds every job from its FederatedJob. Later writes dropped are not said",
                        what)

    def refusal(self, count: int) -> Deposed:
        return Deposed(f"{count} job writes not sent: this federator replica no longer holds the leader Lease "
                       "(or may not); retry against the new leader")


def _seconds(stamp: object) -> float | None:
    """A Lease's MicroTime (2026-12-07T23:09:20.123456Z) as Unix seconds; None if it is not one."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


__all__ = ["Deposed", "Fence"]
