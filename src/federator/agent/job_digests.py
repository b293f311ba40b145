"""Each placement's Launch.job_digest, said back on its JobUpdates (agent.proto; server/reapplied.py).

Why a module of its own: the digest is how a job applied again after a restore of the federator's store takes back
the placement its earlier self runs here; the federator has no other record of it then. So it must outlive this
agent: a backend that can keep it with the placement on its member (`KeepsJobDigests`: the Kubernetes backend
writes it as an annotation on the workload object) is handed it before the launch and asked for it after a restart.
Kept here too, in memory, for a backend that cannot (the simulated one): then a restart forgets it, and the
federator holds such a placement as an orphan, as an agent before 0.17.0 had it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from federator.agent.launch_words import LaunchWords


@runtime_checkable
class KeepsJobDigests(Protocol):
    """A backend that keeps a placement's job digest on its member, where a restarted agent reads it back."""

    def keep_digest(self, placement_id: str, digest: str) -> None:
        """Called before `launch`: the digest goes on what the launch creates."""

    def digest_of(self, placement_id: str) -> str:
        """The digest the member holds of the placement ("" if none)."""


class JobDigests(LaunchWords):
    """Each placement's digest, as its Launch said it; the backend's word for one launched before a restart."""

    def __init__(self, backend: object) -> None:
        keeps = isinstance(backend, KeepsJobDigests)
        super().__init__(read_back=backend.digest_of if keeps else None,  # type: ignore[attr-defined]
                         keep=backend.keep_digest if keeps else None)  # type: ignore[attr-defined]


__all__ = ["JobDigests", "KeepsJobDigests"]
