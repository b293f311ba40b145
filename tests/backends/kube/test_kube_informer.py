"""The informer's list+watch protocol against a scripted API: 410 Gone re-lists, bookmarks advance."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from federator.backends.kube.api import NODES, GoneError, Resource
from federator.backends.kube.informer import ADDED, DELETED, MODIFIED, Informer, diff_relist


def obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}}


def test_a_relist_becomes_the_events_a_broken_watch_missed() -> None:
    cache = {"a": obj("a", "1"), "b": obj("b", "1"), "c": obj("c", "1")}
    events = diff_relist(cache, [obj("a", "1"), obj("b", "5"), obj("d", "6")])
    assert sorted((k, o["metadata"]["name"]) for k, o in events) == [(ADDED, "d"), (DELETED, "c"), (MODIFIED, "b")]


class ScriptedApi:
    """Lists return the next scripted state; watches replay scripted events, then raise 410 or end."""

    def __init__(self) -> None:
        self.lists = [
            {"metadata": {"resourceVersion": "10"}, "items": [obj("a", "10")]},
            {"metadata": {"resourceVersion": "30"}, "items": [obj("b", "30")]},
        ]
        self.watches: list[list[dict[str, Any]] | Exception] = [
            [{"type": "ADDED", "object": obj("b", "11")},
             {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}}],
            GoneError(410, "too old resource version"),
        ]
        self.watched_from: list[str] = []

    def list(self, res: Resource, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        return self.lists.pop(0) if self.lists else {"metadata": {"resourceVersion": "30"}, "items": [obj("b", "30")]}

    def watch(self, res: Resource, namespace: str | None = None, *, resource_version: str,
              **_: Any) -> Iterator[dict[str, Any]]:
        self.watched_from.append(resource_version)
        step = self.watches.pop(0) if self.watches else []
        if isinstance(step, Exception):
            raise step
        if not step:
            import time

            time.sleep(0.05)
        yield from step


def test_gone_relists_and_the_cache_follows() -> None:
    api = ScriptedApi()
    seen: list[tuple[str, str]] = []

    async def run() -> dict[str, Any]:
        informer = Informer(api, NODES, on_event=lambda k, o: seen.append((k, o["metadata"]["name"])))
        informer.start()
        await informer.wait_synced(5)
        deadline = asyncio.get_running_loop().time() + 5
        def settled() -> bool:
            """The relist applied on the loop AND the thread watching again from its version: the thread posts the
            list, then watches, so a test that stopped the informer once the cache changed could stop it before
            that watch (watched_from ["10", "20"]: a flake under load)."""
            b = informer.cache.get("b")
            return (informer.relists >= 1 and "a" not in informer.cache and b is not None
                    and b["metadata"]["resourceVersion"] == "30" and len(seen) >= 4 and len(api.watched_from) >= 3)

        while not settled():
            assert asyncio.get_running_loop().time() < deadline, (seen, api.watched_from)
            await asyncio.sleep(0.01)
        informer.stop()
        return dict(informer.cache)

    cache = asyncio.run(run())
    assert set(cache) == {"b"} and cache["b"]["metadata"]["resourceVersion"] == "30"
    # watch from the list's version, resume from the bookmark's, then 410 -> list again -> watch from 30
    assert api.watched_from[:3] == ["10", "20", "30"]
    assert seen[:4] == [(ADDED, "a"), (ADDED, "b"), (DELETED, "a"), (MODIFIED, "b")]


def test_a_wait_for_the_first_list_cancelled_as_it_comes_ends_cancelled() -> None:
    """FederatedJobController.start waits for its informer's first list, then cancels the jobs of FederatedJobs that
    vanished. With 3.11's wait_for, a cancel landing in the turn the list came was dropped (CPython gh-86296,
    woken.py): a cancelled start would have gone on to cancel jobs for an owner that had stopped it."""
    async def run() -> None:
        informer = Informer(ScriptedApi(), NODES)  # never started: the test says when it is synced
        waiting = asyncio.get_running_loop().create_task(informer.wait_synced(60))
        while not informer.synced._waiters:  # type: ignore[attr-defined]
            await asyncio.sleep(0)
        informer.synced.set()  # the first list comes ...
        waiting.cancel()  # ... in the very turn the waiting task is cancelled
        await asyncio.wait([waiting])
        assert waiting.cancelled(), "the cancelled wait returned as if nothing had cancelled it"

    asyncio.run(run())
