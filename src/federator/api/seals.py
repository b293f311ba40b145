"""The names of the seals' part of the agent contract, shared by the federator (server/seals.py) and the agent."""

from __future__ import annotations

SEALS = "seals"  # Hello.features and Welcome.features (agent.proto): the agent says them back, the federator makes them
MAX_SEAL_CHARS = 128  # JobUpdate.launch_seal, cancel_seal: longer, or not printable ASCII, is refused as malformed

__all__ = ["MAX_SEAL_CHARS", "SEALS"]
