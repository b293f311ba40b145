"""A word each placement's Launch gave the agent that its JobUpdates say back (its job digest, its accelerator model,
its seal: agent/job_digests.py, agent/accelerator_models.py, agent/launch_seals.py).

Why one class: both are kept the same way. The word is remembered in memory from the Launch; a backend that can
keep it with the placement on its member is handed it at launch and asked for it after a restart, so that it
outlives this agent; a backend that cannot (the simulated one) leaves a restarted agent with nothing to say.
"""

from __future__ import annotations

from collections.abc import Callable, Container


class LaunchWords:
    """Each placement's word, as its Launch said it; the backend's (`read_back`) for one launched before a restart."""

    def __init__(self, *, read_back: Callable[[str], str] | None = None,
                 keep: Callable[[str, str], None] | None = None) -> None:
        self._read_back = read_back  # what the member kept of a placement ("" if none), or None: nothing kept
        self._keep = keep  # hands the backend a word before its launch, or None
        self._words: dict[str, str] = {}

    def launched(self, placement_id: str, word: str) -> None:
        """A Launch's word, before the backend launches it ("" keeps nothing)."""
        if not word:
            return
        self._words[placement_id] = word
        if self._keep is not None:
            self._keep(placement_id, word)

    def of(self, placement_id: str) -> str:
        """The word to say of a placement: its Launch's, else what the member kept ("" if neither)."""
        word = self._words.get(placement_id, "")
        if not word and self._read_back is not None:
            word = self._read_back(placement_id)
        return word

    def keep_only(self, held: Container[str]) -> None:
        """Forget the placements the backend no longer holds (a re-sync's)."""
        self._words = {pid: w for pid, w in self._words.items() if pid in held}


__all__ = ["LaunchWords"]
