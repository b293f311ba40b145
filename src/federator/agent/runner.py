"""Run one agent process until it is stopped: the loop every agent backend shares.

Here, not in `cli/agent.py`, so the backends' entry points (`backends/kube/main.py`)
and the command line both import it without importing each other.
"""

from __future__ import annotations

import asyncio
import sys

from federator.agent.agent import Agent


def run(agent: Agent, *, fatal: tuple[type[Exception], ...] = ()) -> int:
    """Run an agent until it is stopped; a bad endpoint address or a `fatal` error exits non-zero, saying why."""
    from federator.agent.endpoint import ListenError
    from federator.agent.fencing import ConfigConflict

    fatal = (*fatal, ConfigConflict)
    try:
        asyncio.run(agent.run())
    except KeyboardInterrupt:
        pass
    except ListenError as exc:
        print(f"federator agent: {exc}", file=sys.stderr)
        return 2
    except fatal as exc:
        print(f"federator agent: {exc}", file=sys.stderr)
        return 1
    return 0


__all__ = ["run"]
