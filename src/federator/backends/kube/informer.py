"""Keep an asyncio-side cache of one kind of object current: list, then watch.

The `kubernetes` client is synchronous, so each informer runs its list and
watch calls in a daemon thread and hands every change to the asyncio loop with
`loop.call_soon_threadsafe`. The cache is only ever touched on the loop, so the
agent and the controller read it without locks.

The protocol is the one client-go's reflector follows: list (remembering the
list's resourceVersion), watch from that version with bookmarks (which only
advance the version), and list again when the server answers 410 Gone or the
stream breaks. A re-list is turned into the ADDED / MODIFIED / DELETED events
that were missed, so handlers only ever see events.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from federator.backends.kube.api import GoneError, KubeError, Obj, Resource, key_of
from federator.woken import woken

log = logging.getLogger("federator.kube")

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
EventHandler = Callable[[str, Obj], None]


class ListWatcher(Protocol):
    """The part of KubeApi an informer needs (a fake implements it in unit tests)."""

    def list(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> Obj: ...

    def watch(self, res: Resource, namespace: str | None = None, *, resource_version: str,
              label_selector: str | None = None, field_selector: str | None = None,
              timeout_seconds: int = 60) -> Iterator[Obj]: ...


def diff_relist(cache: Mapping[str, Obj], items: Iterable[Obj]) -> list[tuple[str, Obj]]:
    """The events that turn `cache` into `items`: what a watch would have said had it not broken."""
    fresh = {key_of(o): o for o in items}
    events: list[tuple[str, Obj]] = [(DELETED, old) for key, old in cache.items() if key not in fresh]
    for key, obj in fresh.items():
        old = cache.get(key)
        if old is None:
            events.append((ADDED, obj))
        elif _rv(old) != _rv(obj):
            events.append((MODIFIED, obj))
    return events


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class Informer:
    """A cache of one resource (optionally one namespace, selector and `accept` filter) kept current by list+watch."""

    def __init__(self, api: ListWatcher, res: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 on_event: EventHandler | None = None, watch_timeout: int = 60, retry_seconds: float = 1.0,
                 name: str = "", accept: Callable[[Obj], bool] | None = None) -> None:
        self.api = api
        self.res = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.on_event = on_event or (lambda _t, _o: None)
        self.watch_timeout = watch_timeout
        self.retry_seconds = retry_seconds
        self.name = name or res.plural
        # Objects the selectors match but the owner does not want (another agent's, in another namespace): never
        # cached nor handed on, as if the server had not listed them.
        self.accept = accept
        self.cache: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self.relists = 0  # lists after the first: 410 Gone or a broken stream
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def stop(self) -> None:
        """Stop after the current watch request ends (at most watch_timeout); the thread is a daemon."""
        self._stop.set()

    async def wait_synced(self, timeout: float = 60.0) -> None:
        """Until the first list is in the cache; TimeoutError after `timeout`. A cancel of the caller always ends
        it: 3.11's wait_for dropped one landing as the list came (woken.py), and a cancelled controller start would
        have gone on to cancel the jobs of vanished FederatedJobs (no caller cancels it today; one may)."""
        if not await woken(self.synced, timeout):
            raise TimeoutError(f"{self.name}: not listed within {timeout:g}s")

    # -- the thread ---------------------------------------------------------

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                listed = self.api.list(self.res, self.namespace, label_selector=self.label_selector,
                                       field_selector=self.field_selector)
                if not first:
                    self.relists += 1
                first = False
                version = str((listed.get("metadata") or {}).get("resourceVersion", ""))
                if not self._post(self._apply_list, list(listed.get("items") or [])):
                    return
                self._watch_from(version)
            except GoneError:
                log.info("%s: resourceVersion expired (410 Gone); listing again", self.name)
            except KubeError as exc:
                log.warning("%s: %s; listing again in %.1fs", self.name, exc, self.retry_seconds)
                self._stop.wait(self.retry_seconds)
            except Exception:  # a bug must not end the watch for good
                log.exception("%s: informer failed; listing again in %.1fs", self.name, self.retry_seconds)
                self._stop.wait(self.retry_seconds)

    def _watch_from(self, version: str) -> None:
        """Watch until stopped; a watch the server ends in time is resumed from the last version seen."""
        while not self._stop.is_set():
            for event in self.api.watch(self.res, self.namespace, resource_version=version,
                                        label_selector=self.label_selector, field_selector=self.field_selector,
                                        timeout_seconds=self.watch_timeout):
                kind, obj = str(event.get("type")), event.get("object") or {}
                version = _rv(obj) or version
                if kind == "BOOKMARK":
                    continue
                if kind in (ADDED, MODIFIED, DELETED) and not self._post(self._apply_event, kind, obj):
                    return
                if self._stop.is_set():
                    return

    def _post(self, fn: Callable[..., None], *args: Any) -> bool:
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed under us: the process is ending
            return False
        return True

    # -- on the loop ----------------------------------------------------------

    def _apply_list(self, items: list[Obj]) -> None:
        if self.accept is not None:
            items = [o for o in items if self.accept(o)]
        for kind, obj in diff_relist(self.cache, items):
            self._apply_event(kind, obj)
        self.synced.set()

    def _apply_event(self, kind: str, obj: Obj) -> None:
        if self.accept is not None and not self.accept(obj):
            return
        key = key_of(obj)
        if kind == DELETED:
            self.cache.pop(key, None)
        else:
            self.cache[key] = obj
        try:
            self.on_event(kind, obj)
        except Exception:  # one bad handler call must not stop the stream of events
            log.exception("%s: handling %s %s failed", self.name, kind, key)


__all__ = ["ADDED", "DELETED", "MODIFIED", "EventHandler", "Informer", "ListWatcher", "diff_relist"]
