"""The name both sides share for confirming late Launches (agent.proto, Launch, "Late launches").

Why a module of its own: the federator lists it in Welcome.features and the agent reads it there; neither side's
package may import the other's, so the name lives beside the wire it belongs to, as "placement-deltas" does.
"""

from __future__ import annotations

LAUNCH_CONFIRMATION = "launch-confirmation"
"""The Welcome feature: this federator gives a placement up only by a Cancel sent after its Launch or by ending the
stream, so a later message it dated that arrives fresh confirms a Launch that arrived past its bound."""

__all__ = ["LAUNCH_CONFIRMATION"]
