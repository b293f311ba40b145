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

from typing import Protocol, runtime_checkable

from federator.agent.launch_words import LaunchWords


@runtime_checkable
class KeepsAcceleratorModels(Protocol):
    """A backend that keeps a placement's accelerator model on its member (written by its `launch`, which has the
    placement), where a restarted agent reads it back."""

    def accelerator_model_of(self, placement_id: str) -> str:
        """The model the member holds of the placement ("" if none)."""


class AcceleratorModels(LaunchWords):
    """Each placement's model, as its Launch said it ("" for CPU-only work keeps nothing); the backend's word for one
    launched before a restart."""

    def __init__(self, backend: object) -> None:
        keeps = isinstance(backend, KeepsAcceleratorModels)
        super().__init__(read_back=backend.accelerator_model_of if keeps else None)  # type: ignore[attr-defined]


__all__ = ["AcceleratorModels", "KeepsAcceleratorModels"]
