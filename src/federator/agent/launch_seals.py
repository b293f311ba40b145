"""Each placement's Launch.seal, said back on its JobUpdates (JobUpdate.launch_seal, agent.proto; server/seals.py).

Why a module of its own: after a restore of the federator's store, a job it holds Pending while its gang runs here is
adopted only when this agent says back the seal the federator made for that very Launch (a placement id alone is any
agent's word: security QA secqa61, H2). So the seal must outlive this agent: a backend that keeps it with the
placement on its member (`KeepsLaunchSeals`: the Kubernetes backend writes it as an annotation on the workload
object its launch creates) is handed it before the launch and asked for it after a restart. Kept here too, in
memory, for a backend that cannot (the simulated one): then a restart forgets it, and the federator holds such a
placement as an orphan after a restore of its store, as it does an agent's before 0.20.0.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from federator.agent.launch_words import LaunchWords


@runtime_checkable
class KeepsLaunchSeals(Protocol):
    """A backend that keeps a placement's Launch.seal on its member, where a restarted agent reads it back."""

    def keep_launch_seal(self, placement_id: str, seal: str) -> None:
        """Called before `launch`: the seal goes on what the launch creates."""

    def launch_seal_of(self, placement_id: str) -> str:
        """The seal the member holds of the placement ("" if none)."""


class LaunchSeals(LaunchWords):
    """Each placement's seal, as its Launch said it; the backend's word for one launched before a restart."""

    def __init__(self, backend: object) -> None:
        keeps = isinstance(backend, KeepsLaunchSeals)
        super().__init__(read_back=backend.launch_seal_of if keeps else None,  # type: ignore[attr-defined]
                         keep=backend.keep_launch_seal if keeps else None)  # type: ignore[attr-defined]


__all__ = ["KeepsLaunchSeals", "LaunchSeals"]
