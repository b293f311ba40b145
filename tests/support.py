"""Test helpers shared across the tree (importable as `support`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
T = TypeVar("T")


def eventually(fn: Callable[[], T], *, timeout: float = 30.0, what: str | Callable[[], str] = "condition") -> T:
    """Poll until fn returns something truthy; the machine may be loaded, so deadlines are generous.

    `what` names the condition in the failure message. Pass a callable (a lambda building the
    dump of pods, logs, status) to have it built when the wait times out, so the message shows the
    state at the end of the wait rather than at its start.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - a server restarting refuses connections for a while
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {describe(what)}; last: {last!r}")


def audit_lines(path: Path) -> list[dict[str, Any]]:
    """An audit log's lines as JSON, without the line a new file's chain starts with (security/audit_chain.py)."""
    import json

    lines = [json.loads(raw) for raw in path.read_text().splitlines()]
    return [line for line in lines if line["action"] != "audit.chain-start"]


def sha1_of(path: Path) -> str:
    """A file's bytes as a digest: that a copy, a backup or a store was left as it was."""
    import hashlib

    return hashlib.sha1(path.read_bytes()).hexdigest()


def stored_ids(db: Path) -> list[str]:
    """The job ids a SQLite store file holds, sorted (opened and closed here)."""
    from federator.store import SqliteJobStore

    store = SqliteJobStore(db)
    try:
        return sorted(j.job_id for j in store.load())
    finally:
        store.close()


def describe(what: str | Callable[[], str]) -> str:
    """`what` as text: a string as it is, a callable's answer (or why it had none: the dump must not
    hide the timeout it describes)."""
    if not callable(what):
        return what
    try:
        return what()
    except Exception as exc:  # noqa: BLE001 - a dead server or cluster is often what the wait was about
        return f"<describing the condition failed: {exc!r}>"


def federator_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`federator ARGS` as a user runs it, in a process of its own, without the FEDERATOR_* settings of the
    environment the tests run in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    return subprocess.run([sys.executable, "-m", "federator", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)



def scraped(url: str, name: str, **labels: str) -> float | None:
    """The value of the first sample `name` with these labels in a scrape of `url` (None: no such sample)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    body = urllib.request.urlopen(url, timeout=10).read().decode()  # noqa: S310 - loopback
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def until(what: Callable[[], object], *, timeout: float = 30.0) -> None:
    """Wait, on the running event loop, until `what()` holds (AssertionError after `timeout` seconds)."""
    end = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.1)


async def accepted(fed: Any, namespace: str, *names: str, timeout: float = 30.0) -> None:
    """Wait until a job of each name of `namespace` is accepted: its write stored, so a scheduling cycle's candidate.

    Why not `until(lambda: fed.jobs.named(NAME))`: a job is in the job table from its reservation on, while its
    write is still on its way to the store, and only a stored one is a candidate (server/intake.py `submit_async`).
    A test that scheduled once it saw the names placed nothing when the store was slow (a loaded machine: the
    Kubernetes-mode store's writes are HTTP requests)."""
    await until(lambda: all(any(j.spec.namespace == namespace for j in fed.jobs.named(name))
                            and not fed.intake.arrivals(namespace, name) for name in names), timeout=timeout)


def cancels_sent(rec: Any) -> dict[str, str]:
    """The Cancel orders waiting in a cluster's outbox (a ClusterRecord's), by placement id: their reasons."""
    from federator.server.orders import CancelOrder

    out = {}
    while not rec.outbox.empty():
        order = rec.outbox.get_nowait()
        if isinstance(order, CancelOrder):
            out[order.placement_id] = order.reason
    return out


class Walked(dict[Any, Any]):
    """A spy for work that must not grow with a dict: a dict that counts the entries read by walking it
    (iterating it, its keys, values or items), not those read by key. Put in place of an index's own dict
    (server/placement_index.py's `_job`) to show that forgetting one job walks none of the others."""

    walked = 0

    def __iter__(self) -> Any:
        for key in super().__iter__():
            self.walked += 1
            yield key

    def keys(self) -> Any:
        return list(self)

    def values(self) -> Any:
        return [self[k] for k in self]

    def items(self) -> Any:
        return [(k, self[k]) for k in self]
