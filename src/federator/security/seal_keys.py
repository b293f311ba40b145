"""The seal key file (`federator serve --seal-key-file`): secrets of the federator's own that outlive its serving key.

Why: the seals of an agent's words (server/seals.py) and the page tokens (server/paging.py) were keyed only from the
TLS serving key read at start. cert-manager renews the chart's certificate with a new private key
(`rotationPolicy: Always`), so after a renewal and a restart no seal an agent kept verified any more: a federator
restored from an older store could adopt none of the placements that ran meanwhile (each cancelled as an orphan and
run again), and every page token handed out before was refused. A key of its own, kept in a Secret across upgrades
and renewals and shared by every replica, ends that.

The file: one key a line, the first seals, every one verifies (so the key itself is rotated by putting a new line
first and dropping the old one once nothing sealed under it is needed: docs/security.md). A key is base64 (standard
or URL-safe, padded or not) of at least MIN_KEY_BYTES random bytes, as `openssl rand -base64 32` prints; blank lines
and lines starting with `#` are skipped. Anything else is refused naming the flag, the line and the problem.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path

FLAG = "--seal-key-file"
MIN_KEY_BYTES = 32
MAX_KEYS = 16
"""Every seal an agent says back is tried under each key whose id it names; more keys than this is a file kept
wrong, not a rotation."""
MAX_FILE_BYTES = 64 * 1024
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


class SealKeyError(ValueError):
    """A seal key file that cannot be used: its words name the flag, the file and, where one is at fault, the line."""


@dataclass(frozen=True, slots=True)
class SealKeys:
    """The keys of a seal key file, in its order: `keys[0]` seals, every one verifies."""

    keys: tuple[bytes, ...]
    source: str = ""

    @property
    def sealing(self) -> bytes:
        return self.keys[0]


def secrets_of(keys: SealKeys | None, serving_key: bytes | None) -> tuple[bytes | None, tuple[bytes, ...]]:
    """The secret seals and page tokens are made under, and the others that verify them too: the file's first key,
    then its others and the serving key (what 0.20.0 sealed under, and any federator started without the flag);
    without a file, the serving key alone (None: --insecure, a random key of the process)."""
    if keys is None:
        return serving_key, ()
    return keys.sealing, keys.keys[1:] + ((serving_key,) if serving_key is not None else ())


def parse_seal_keys(text: str, *, source: str = FLAG) -> SealKeys:
    """The keys of a seal key file's `text`; SealKeyError naming `source` and the line for anything else."""
    keys: list[bytes] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}: line {number}"
        if not _BASE64.fullmatch(line):
            raise SealKeyError(f"{where}: not a base64 key (one key a line, as `openssl rand -base64 32` prints; "
                               "`#` starts a comment line)")
        try:
            bare = line.rstrip("=").replace("-", "+").replace("_", "/")
            key = base64.b64decode(bare + "=" * (-len(bare) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SealKeyError(f"{where}: not a base64 key ({exc})") from exc
        if len(key) < MIN_KEY_BYTES:
            raise SealKeyError(f"{where}: a key of {len(key)} bytes; a key needs at least {MIN_KEY_BYTES} random "
                               "bytes (`openssl rand -base64 32`)")
        if key in keys:
            raise SealKeyError(f"{where}: the same key as an earlier line; list each key once")
        keys.append(key)
        if len(keys) > MAX_KEYS:
            raise SealKeyError(f"{where}: more than {MAX_KEYS} keys; keep the sealing key first and only the "
                               "older keys whose seals are still needed")
    if not keys:
        raise SealKeyError(f"{source}: no key in the file (one base64 key a line, at least {MIN_KEY_BYTES} bytes; "
                           "make one with `openssl rand -base64 32`)")
    return SealKeys(tuple(keys), source)


def load_seal_keys(path: Path) -> SealKeys:
    """The keys of the seal key file at `path`; SealKeyError naming the flag and the problem (missing, unreadable,
    too large, not text, a bad line)."""
    source = f"{FLAG} {path}"
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SealKeyError(f"{source}: cannot read the file: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise SealKeyError(f"{source}: larger than {MAX_FILE_BYTES} bytes; a seal key file holds a few base64 lines")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SealKeyError(f"{source}: not UTF-8 text (byte {exc.start}); one base64 key a line, not the raw key "
                           "bytes") from exc
    return parse_seal_keys(text, source=source)


__all__ = ["FLAG", "MAX_KEYS", "MIN_KEY_BYTES", "SealKeyError", "SealKeys", "load_seal_keys", "parse_seal_keys",
           "secrets_of"]
