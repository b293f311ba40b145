"""Leader election with a coordination.k8s.io/v1 Lease, so two federator replicas never both act.

The algorithm is client-go's `leaderelection`: a candidate takes the Lease when
it is free or when its record has not changed for `lease_duration` as
measured on the candidate's own clock (so clock skew between replicas does not
matter); the holder renews every `retry_period` and gives up -- stops acting --
if it could not renew for `renew_deadline`, which is shorter than
`lease_duration`, so it has stopped before anyone else may take over. Every
write is a PUT with the resourceVersion read, so two candidates racing for one
free Lease cannot both win. A holder that stops cleanly releases the Lease so
the next one need not wait.

`decide` is the pure part: what to write, given the Lease read and what this
candidate has seen of it; `time_left` is the holder's side: how long it may
still act without a renewal.

A renewal is given only the time left before the renew deadline. An API
server that takes the connection and never answers held the old loop in one
request for its own timeout (30 s, twice: a GET and a PUT), so a leader that
could not renew kept scheduling past the moment another replica could take
the Lease. A deadline is counted from the start of the last renewal that
succeeded, never its end: the others' clocks start when they see the write,
which is later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from federator.backends.kube.api import LEASES, ConflictError, ForbiddenError, KubeApi, KubeError, NotFoundError, Obj
from federator.timestamps import utc_micro

log = logging.getLogger("federator.kube.leader")


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("leader election: need 0 < retry period < renew deadline < lease duration, got "
                             f"{self.retry_period:g} / {self.renew_deadline:g} / {self.lease_duration:g}")


def _record(spec: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(spec.get(k) for k in ("holderIdentity", "renewTime", "acquireTime", "leaseTransitions"))


@dataclass(slots=True)
class Observed:
    """What a candidate last saw of the Lease, and when (on its own monotonic clock)."""

    record: tuple[Any, ...] = ()
    at: float = 0.0


def decide(lease: Mapping[str, Any] | None, *, cfg: LeaseConfig, observed: Observed, now_mono: float,
           now_wall: float) -> Obj | None:
    """The Lease to write to hold leadership, or None when another holder's Lease is still live."""
    spec: Mapping[str, Any] = (lease or {}).get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    record = _record(spec)
    if record != observed.record:
        observed.record, observed.at = record, now_mono
    mine = holder == cfg.identity
    expired = not holder or now_mono - observed.at > float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
    if not mine and not expired:
        return None
    new_spec = {
        "holderIdentity": cfg.identity,
        "leaseDurationSeconds": int(cfg.lease_duration),
        "acquireTime": spec.get("acquireTime") if mine else utc_micro(now_wall),
        "renewTime": utc_micro(now_wall),
        "leaseTransitions": int(spec.get("leaseTransitions") or 0) + (0 if mine or not holder else 1),
    }
    meta: Obj = {"name": cfg.name, "namespace": cfg.namespace}
    if lease is not None:
        meta["resourceVersion"] = (lease.get("metadata") or {}).get("resourceVersion")
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": new_spec}


def time_left(*, last_renew: float, now: float, cfg: LeaseConfig) -> float:
    """Seconds the holder may still act (<= 0: step down), on its monotonic clock; `last_renew` is when the last
    successful renewal started."""
    return last_renew + cfg.renew_deadline - now


class LeaderElector:
    def __init__(self, api: KubeApi, cfg: LeaseConfig, *, monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.api = api
        self.cfg = cfg
        self.monotonic = monotonic
        self.wall = wall
        self.observed = Observed()
        self.last_renew = 0.0
        self.leading = False

    def try_acquire_or_renew(self) -> bool:
        """One round (blocking: run it in a thread). True if this candidate holds the Lease now."""
        started = self.monotonic()
        try:
            lease: Obj | None = self.api.get(LEASES, self.cfg.name, self.cfg.namespace)
        except NotFoundError:
            lease = None
        desired = decide(lease, cfg=self.cfg, observed=self.observed, now_mono=self.monotonic(),
                         now_wall=self.wall())
        if desired is None:
            return False
        try:
            if lease is None:
                self.api.create(LEASES, desired, self.cfg.namespace)
            else:
                self.api.replace(LEASES, self.cfg.name, desired, self.cfg.namespace)
        except ConflictError:
            return False  # another candidate wrote first
        self.last_renew = started
        return True

    async def acquire(self) -> None:
        """Block until this candidate leads."""
        announced = hinted = False
        while True:
            try:
                if await asyncio.to_thread(self.try_acquire_or_renew):
                    self.leading = True
                    log.info("leader election: %s leads (Lease %s/%s)", self.cfg.identity, self.cfg.namespace,
                             self.cfg.name)
                    return
                if not announced:
                    holder = self.observed.record[0] if self.observed.record else "?"
                    log.info("leader election: %s is standing by; %s holds Lease %s/%s", self.cfg.identity,
                             holder, self.cfg.namespace, self.cfg.name)
                    announced = True
            except KubeError as exc:
                hint = self._hint(exc) if not hinted else ""
                hinted = hinted or bool(hint)
                log.warning("leader election: %s%s", exc, hint)
            await asyncio.sleep(self.cfg.retry_period)

    def _hint(self, exc: KubeError) -> str:
        """What to do about a Lease the federator may not touch (said once): outside the cluster the Lease's
        namespace fell back to "default", where the shipped RBAC grants nothing."""
        if not isinstance(exc, ForbiddenError):
            return ""
        return (f"; the federator may not use Leases in namespace {self.cfg.namespace!r}: run it with "
                "--lease-namespace set to the namespace its Role grants Leases in (deploy/kubernetes/"
                "rbac-federator.yaml: federator-system), or grant it there")

    async def renew(self) -> None:
        """Renew until leadership is lost (another holder, or no renewal within renew_deadline); then return.

        Each renewal is waited for only until the deadline: one that has not answered by then is left to its
        thread, and this holder steps down. A cancel (KubeMode.stop, before it releases the Lease) always ends it:
        with 3.11's wait_for, one landing as a renewal answered was dropped and the loop renewed on: it could take
        the Lease back after the release, and a standby then waited out its duration instead of taking over."""
        while True:
            left = self.time_left()
            if left > 0:
                await asyncio.sleep(min(self.cfg.retry_period, left))
                left = self.time_left()
            if left <= 0:
                break
            try:  # not wait_for: on 3.11 it drops a cancel landing as a renewal answers (woken.py), and renews on
                async with asyncio.timeout(left):
                    renewed = await asyncio.to_thread(self.try_acquire_or_renew)
            except TimeoutError:
                break
            except KubeError as exc:
                log.warning("leader election: renewing: %s", exc)
                continue
            if not renewed:
                log.error("leader election: %s lost Lease %s/%s to %s", self.cfg.identity, self.cfg.namespace,
                          self.cfg.name, self.observed.record[0] if self.observed.record else "?")
                self.leading = False
                return
        log.error("leader election: %s could not renew Lease %s/%s for %gs (its renew deadline); stepping down",
                  self.cfg.identity, self.cfg.namespace, self.cfg.name, self.cfg.renew_deadline)
        self.leading = False

    def time_left(self) -> float:
        return time_left(last_renew=self.last_renew, now=self.monotonic(), cfg=self.cfg)

    def release(self) -> None:
        """Give the Lease up (blocking) so a standby takes over at once."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = self.api.get(LEASES, self.cfg.name, self.cfg.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.cfg.identity:
                return
            lease["spec"] = {**spec, "holderIdentity": None, "leaseDurationSeconds": 1,
                             "renewTime": utc_micro(self.wall())}
            self.api.replace(LEASES, self.cfg.name, lease, self.cfg.namespace)
            log.info("leader election: %s released Lease %s/%s", self.cfg.identity, self.cfg.namespace,
                     self.cfg.name)
        except KubeError as exc:
            log.warning("leader election: releasing: %s", exc)


__all__ = ["LeaderElector", "LeaseConfig", "Observed", "decide", "time_left"]
