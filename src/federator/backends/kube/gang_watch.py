"""The gang watch's tick: gangs whose pods went quiet are judged by the clock, not by an event.

Why a module of its own: a gang is refused by its timeout (gang.py) when a change to its pods or workload comes
after its deadline (placement_phases.py), but a gang that never gets a replica bound may see no change at all. The
tick (`GangGuard.tick`, started by `KubeBackend.start` only when a timeout applies) passes over every placement not
finished here: without a gang admitter it refuses each gang not wholly bound within the gang timeout, and judges
again a gang whose broken clock runs; in Kueue mode it asks the federator to move a placement Kueue has held past
the admission timeout (JobUpdate.admission_overdue), since only the federator knows whether another cluster can run
it. One placement's trouble is logged and never ends the watch over the others.
"""

from __future__ import annotations

import asyncio
import logging

from federator.backends.kube.api import Obj
from federator.backends.kube.placement_phases import PlacementPhases
from federator.model import JobPhase

log = logging.getLogger("federator.agent.kube")


class GangWatch(PlacementPhases):
    """The tick over every gang here (`_watch_gangs`), and what a re-listed pod watch tells the gang guard."""

    async def _watch_gangs(self) -> None:
        """Without a gang admitter: refuse every gang not wholly bound to nodes within the gang timeout.
        In Kueue mode: ask the federator to move every placement Kueue has held longer than the Kueue admission
        timeout (`_ask_to_move`).

        The tick finds gangs whose pods went quiet; a gang whose pods or workload change after its
        deadline is judged by that change first (`_refresh`), so a late tick cannot let it finish."""
        while True:
            await asyncio.sleep(self.gang.tick)
            await self._check_gangs()

    async def _check_gangs(self) -> None:
        """One pass of the gang watch over every placement not finished here."""
        self._note_pod_relists()
        broken = set(self.gang.broken_clocks())
        for pid in list(self._phases):
            try:
                workload = self._workload(pid)
                why = self._gang_overdue(pid, workload, self._pods_of(pid)) if workload is not None else ""
                if why:
                    await self._refuse(pid, why)
                elif workload is not None:
                    self._ask_to_move(pid, workload)
                    if pid in broken:  # a broken gang's pods may not change again: its timeout is judged here
                        self._refresh(pid, workload)
            except Exception:  # one placement's trouble must not end the watch over every gang
                log.exception("gang timeout check of placement %s failed", pid)

    def _ask_to_move(self, pid: str, workload: Obj) -> None:
        """Kueue mode: Kueue has held the placement past the admission timeout; ask the federator to move the
        job where it can run now (JobUpdate.admission_overdue). Only the federator knows whether any other
        cluster can: deleting it here, as the agent once did, sent the job back to the end of this queue
        whenever no other could."""
        phase = self._phases.get(pid, (JobPhase.PLACED, ""))[0]
        if phase is not JobPhase.PLACED or pid in self._cancelled:
            return
        why = self.gang.hold_overdue(pid, workload)
        if why and self._started:
            log.info("placement %s: %s; asking the federator to move it", pid, why)
            self._on_update(pid, JobPhase.PLACED, why, admission_overdue=True)

    def _note_pod_relists(self) -> None:
        """A re-listed pod watch skipped changes: no gang counts as watched from its launch any more."""
        if self.pods.relists != self._pod_relists:
            self._pod_relists = self.pods.relists
            self.gang.watch_broke()
