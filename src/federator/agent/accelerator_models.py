"""Each placement's accelerator model (its Launch's placement.accelerator_model), said back on its JobUpdates
(JobUpdate.accelerator_model, agent.proto; server/adoption.py).

Why a module of its own: after a restore of the federator's store, a job it holds Pending while its gang runs here
is adopted, and only this agent can say which of the job's accepted models the gang runs on (a gang accepting
[H100, A100] placed on A100 because H100 was full was booked as H100). So the word must outlive this agent: a
backend that keeps it with the placement on its member (`KeepsAcceleratorModels`: the Kubernetes backend writes it
as an annotation on the workload object its launch creates) is asked for it after a restart. Kept here too, in
memory, for a backend that cannot (the simulated one): then a restart forgets it, and the federator books an adopted
placement as before 0.18.0 (on the job's first alternative with a pool on the cluster).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Protocol, runtime_checkable


@runtime_checkable
class KeepsAcceleratorModels(Protocol):
    """A backend that keeps a placement's accelerator model on its member (written by its `launch`, which has the
    placement), where a restarted agent reads it back."""

    def accelerator_model_of(self, placement_id: str) -> str:
        """The model the member holds of the placement ("" if none)."""


class AcceleratorModels:
    """Each placement's model, as its Launch said it; the backend's word for one launched before a restart."""

    def __init__(self, backend: object) -> None:
        self.backend = backend
        self._models: dict[str, str] = {}

    def launched(self, placement_id: str, model: str) -> None:
        """A Launch's placement.accelerator_model ("" for CPU-only work keeps nothing)."""
        if model:
            self._models[placement_id] = model

    def of(self, placement_id: str) -> str:
        """The model to say of a placement: its Launch's, else what the member kept ("" if neither)."""
        model = self._models.get(placement_id, "")
        if not model and isinstance(self.backend, KeepsAcceleratorModels):
            model = self.backend.accelerator_model_of(placement_id)
        return model

    def keep_only(self, held: Container[str]) -> None:
        """Forget the placements the backend no longer holds (a re-sync's)."""
        self._models = {pid: m for pid, m in self._models.items() if pid in held}


__all__ = ["AcceleratorModels", "KeepsAcceleratorModels"]
