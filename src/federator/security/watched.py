"""Files a running federator re-reads when their content changes, and how a reload is put in force: all or nothing.

Why a module of its own: the trust file (security/trust_reload.py), the policy file (server/policy_file.py) and
the federator's TLS files (security/serving_reload.py) are each a mounted Secret or ConfigMap swapped under the
running process, and each had its own copy of the same steps: hash the files, compare with the last look, read
them, refuse a bad file keeping the last good content, tell whoever holds it. The copies drifted (0.7.0 review):
the policy file handed a new policy to its holders all or nothing, and put the old one back when one of them
refused it, while the trust file told its holders one after the other with nothing put back, so a holder that
raised left the TLS layer trusting the new providers and the authenticator the old ones, the reload counted
nowhere (its exception ended the look) and never tried again, since the file's hash was taken as seen. The steps
now live here once:

- `Watched`: content fingerprints (`digest`), `poll` (reload only if the fingerprint moved), `problem`.
- `WatchedFile`: one file read whole into a value (`current`), handed to `subscribe`d listeners. A file that
  does not read is refused with the reader's words; a value a listener refuses is refused too: the listeners
  told before it are told (new, old) to put the old value back, `current` stays, and the file is read again at
  the next look, since nothing was wrong with it. Either way the result is REFUSED, which the caller counts
  (server/reloads.py) and `problem` says why.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

T = TypeVar("T")


class ReloadResult(StrEnum):
    """What one look at a watched file did: the `result` label of the reload counters
    (federator_trust_reload_total, federator_policy_reload_total, ...; `unchanged` is never counted: a poll that
    found nothing new is not a reload)."""

    OK = "ok"
    REFUSED = "refused"
    UNCHANGED = "unchanged"


def digest(paths: Iterable[Path | None]) -> bytes:
    """A digest of these files' content as it is now; a missing or unreadable file is a state too (its return is a
    change), and None reads as empty."""
    out = hashlib.sha256()
    for path in paths:
        try:
            data = path.read_bytes() if path is not None else b""
        except OSError as exc:
            data = f"unreadable: {exc.errno}".encode()
        out.update(str(path).encode() + b"\0" + hashlib.sha256(data).digest())
    return out.digest()


class Watched:
    """Files re-read when their content changes: `poll` reloads if `_fingerprint` moved since the last look,
    `reload` reads them in any case (SIGHUP). `problem` says why the files on disk are refused ("" while what is
    in force is what they say)."""

    _seen: bytes
    problem: str = ""

    def _fingerprint(self) -> bytes:
        raise NotImplementedError

    def reload(self) -> ReloadResult:
        raise NotImplementedError

    def poll(self) -> ReloadResult:
        if self._fingerprint() == self._seen:
            return ReloadResult.UNCHANGED
        return self.reload()


@dataclass(frozen=True, slots=True)
class Refusal:
    """A file that does not read (`WatchedFile._read`): the reader's words, naming the file and the field."""

    problem: str


class WatchedFile(Watched, Generic[T]):
    """One file read whole into a `T`; the last good one is `current`, handed to the listeners all or nothing.

    A subclass says `what` it holds ("policy", "trust": in the log and in `problem`), `_read`s the file, and may
    `_describe` a change and `_summary` what is in force for the log."""

    what: ClassVar[str]
    log: ClassVar[logging.Logger]

    def __init__(self, path: Path, current: T) -> None:
        self.path = path
        self.current = current
        self.problem = ""
        self.change = ""  # what the last reload taken changed (`_describe`), for the log and the audit line
        self._listeners: list[Callable[[T, T], None]] = []

    def subscribe(self, listener: Callable[[T, T], None]) -> None:
        """`listener(old, new)` puts a new value in force. One that raises must leave what it swapped as it was:
        the reload is then refused, and the listeners told before it are told (new, old) to put the old back."""
        self._listeners.append(listener)

    def _read(self) -> T | Refusal:
        raise NotImplementedError

    def _describe(self, old: T, new: T) -> str:
        return "changed"

    def _summary(self, value: T) -> str:
        return f"read from {self.path}"

    def _taken(self) -> None:
        """Called once a reload is in force (a subclass's own bookkeeping)."""

    def reload(self) -> ReloadResult:
        """Read the file now: OK and every listener told, or REFUSED with the last good value in force for all."""
        seen, self._seen = self._seen, self._fingerprint()
        new = self._read()
        if isinstance(new, Refusal):
            self.problem = new.problem
            self.log.error("%s file refused, keeping the last good %s (%s): %s", self.what, self.what,
                           self._summary(self.current), new.problem)
            return ReloadResult.REFUSED
        old = self.current
        failure = self._tell(old, new)
        if failure is not None:
            self._seen = seen  # nothing was wrong with the file: read again at the next look
            self.problem = (f"{self.path}: the {self.what} could not be put in force ({type(failure).__name__}: "
                            f"{failure}); the last good {self.what} stays, and the file is read again at the "
                            "next look")
            self.log.error("%s file refused, keeping the last good %s (%s): %s", self.what, self.what,
                           self._summary(old), self.problem, exc_info=failure)
            return ReloadResult.REFUSED
        self.current, self.problem = new, ""
        self.change = self._describe(old, new)
        self._taken()
        self.log.info("%s file %s reloaded: %s", self.what, self.path, self.change)
        return ReloadResult.OK

    def _tell(self, old: T, new: T) -> Exception | None:
        """Hand `new` to every listener, in order; None if all took it. On the first that raises, the ones told
        before it are told (new, old), latest first, and its exception is returned."""
        told: list[Callable[[T, T], None]] = []
        for listener in self._listeners:
            try:
                listener(old, new)
            except Exception as exc:  # noqa: BLE001 - any refusal refuses the reload; it is logged by the caller
                for done in reversed(told):
                    try:
                        done(new, old)
                    except Exception:
                        self.log.exception("%s reload: putting the last good %s back failed", self.what, self.what)
                return exc
            told.append(listener)
        return None


__all__ = ["ReloadResult", "Refusal", "Watched", "WatchedFile", "digest"]
