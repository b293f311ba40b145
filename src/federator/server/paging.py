"""Paging of ListJobs: a page ends at page_size jobs or at a response of `max_bytes`, whichever comes first.

Unpaged, a few legal jobs with 1 MB annotations made List fail for everyone
("Sent message larger than max"). A page holds at least one job (a job is
within the size limit, or Submit would have refused it), and the token is
the position after the page's last job in the page's order (submission
order, or its reverse), so jobs that finish or arrive between pages neither
repeat nor go missing. The token also carries the fingerprint of the query
it was made for (server/job_listing.py): a position means nothing in another
filter's sequence.

Tokens are sealed (`TokenSeal`): encrypted and authenticated with AES-GCM, bound to what they were made for (the
RPC and the caller) as associated data. Why: List's tokens were readable base64 JSON (the last job's id and
submit time, a query hash) and forgeable as to position, and CancelJobs' were sealed apart with a key of their
own (outside portal QA, N1 and N3): one scheme now serves List, CancelJobs and ClusterService.List, inside
`encode_token`/`decode_token`, so no caller can make a readable one by mistake. The key is derived from the
federator's TLS serving key (`use_secret`, at start), or since 0.21.0 from the seal key file when
`--seal-key-file` is given (security/seal_keys.py: one secret the operator keeps, not two; each use its own HKDF
info, so no token is a seal), so a token survives a restart, a renewal of the serving certificate (with the file)
and a failover to a replica serving with the same key, as a portal paging through a failover expects; the file's
older keys and the serving key open tokens too; each token names its key by a short
id, so one sealed under a key the federator no longer holds (its serving key was replaced, or an --insecure
federator, which has no secret and keys each run anew, restarted) is told apart from a forged one in words. Both
are INVALID_ARGUMENT naming page_token: start again from the first page.

The bound is the whole response's serialized size, field overhead included:
pages were cut at twice --max-message-bytes counting the jobs alone, and a
client that set its receive limit to the 1 MiB the contract named failed on a
1.85 MB page (outside QA, portal m5).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from federator.api import convert
from federator.api.v1 import types_pb2
from federator.model import Job

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1_000


class PageTokenError(ValueError):
    """A page_token that this server did not make."""


@dataclass(frozen=True, slots=True)
class Page:
    jobs: list[types_pb2.Job]
    next_token: str


TOKEN_PROBLEM = ("page_token: not a token this server made for this caller and call; use next_page_token of the "
                 "previous page, or leave it empty for the first page")
STALE = ("page_token: not a token this server made for this caller and call: it was sealed under a key this federator "
         "no longer holds (its TLS serving key was replaced since, without --seal-key-file, a key left that file, or "
         "an --insecure federator restarted); leave it empty to start again from the first page")
OTHER_QUERY = ("page_token: made for another queue, filter or order than this request's; send the same ones as for "
               "the first page, or leave page_token empty to start again")
RESERVE_BYTES = 4_096
"""Room a page leaves for the response's other fields (the token, the echoed filter: each bounded far below)."""


_VERSION = b"\x01"
_INFO = b"federator.io page tokens v1"


def _derive(material: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material)


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"key id\x00" + key).digest()[:4]


class TokenSeal:
    """Seals page tokens: AES-GCM under a key derived (HKDF-SHA256) from a secret, or a random one per process.

    A token is base64url(version, key id, nonce, ciphertext and tag); the key id (4 bytes of a digest of the key)
    names the key without revealing it, so a token of another key is STALE rather than forged."""

    def __init__(self, secret: bytes | None = None, *, also: Sequence[bytes] = ()) -> None:
        key = _derive(secret if secret is not None else secrets.token_bytes(32))
        self._aead = AESGCM(key)
        self.key_id = _key_id(key)
        self._opening = {self.key_id: self._aead}  # `also`'s keys open tokens too, and seal none
        for material in also:
            other = _derive(material)
            self._opening.setdefault(_key_id(other), AESGCM(other))

    def seal(self, values: Sequence[object], bound: str) -> str:
        nonce = secrets.token_bytes(12)
        text = json.dumps(list(values), separators=(",", ":")).encode()
        box = self._aead.encrypt(nonce, text, bound.encode("utf-8", "replace"))
        return base64.urlsafe_b64encode(_VERSION + self.key_id + nonce + box).decode().rstrip("=")

    def open(self, token: str, bound: str) -> list[object]:
        """The values sealed in `token` for `bound`; PageTokenError for anything else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise PageTokenError(TOKEN_PROBLEM) from exc
        if len(raw) < 1 + 4 + 12 + 16 or raw[:1] != _VERSION:
            raise PageTokenError(TOKEN_PROBLEM)
        if (aead := self._opening.get(raw[1:5])) is None:
            raise PageTokenError(STALE)
        try:
            text = aead.decrypt(raw[5:17], raw[17:], bound.encode("utf-8", "replace"))
            values = json.loads(text)
        except (InvalidTag, ValueError, RecursionError) as exc:  # another caller's or call's, or tampered with
            raise PageTokenError(TOKEN_PROBLEM) from exc
        if not isinstance(values, list):
            raise PageTokenError(TOKEN_PROBLEM)
        return values


_seal = TokenSeal()


def use_secret(secret: bytes | None, *, also: Sequence[bytes] = ()) -> TokenSeal:
    """Seal tokens from now on with a key derived from `secret` (the seal key file's first key, or the TLS serving
    key, at start: server/app.py), or a new random one (None); `also`: secrets whose keys open tokens too. The seal
    it replaces is returned (tests put it back)."""
    global _seal
    before, _seal = _seal, TokenSeal(secret, also=also)
    return before


def use_seal(seal: TokenSeal) -> None:
    """Put back a seal `use_secret` returned."""
    global _seal
    _seal = seal


def encode_token(*values: object, bound: str) -> str:
    """A sealed page token holding `values` for `bound` (the RPC and, where pages depend on it, the caller):
    ListJobs', CancelJobs' (server/cancel_jobs.py) and ListClusters' (server/cluster_list.py)."""
    return _seal.seal(values, bound)


def decode_token(token: str, *, bound: str) -> list[object]:
    """The values of a token `encode_token` made for `bound`; PageTokenError for anything else (a client's, never
    trusted: not sealed by this key, for another caller or RPC, tampered with)."""
    return _seal.open(token, bound)


def list_bound(caller: str) -> str:
    """What a ListJobs token is bound to: the RPC and the caller (the user a delegate acts for), whose visibility
    the pages were cut from."""
    return f"jobs.list\x00{caller}"


def _encode(job: Job, fingerprint: str, caller: str) -> str:
    return encode_token(job.submitted_at, job.job_id, fingerprint, bound=list_bound(caller))


def _decode(token: str, fingerprint: str, caller: str) -> tuple[float, str]:
    """The position in `token`, which must have been made for `caller` and the query of `fingerprint`."""
    values = decode_token(token, bound=list_bound(caller))
    try:
        at, job_id, made_for = values
        if not isinstance(at, int | float) or not isinstance(job_id, str) or not math.isfinite(at := float(at)):
            raise ValueError
    except (ValueError, OverflowError) as exc:
        raise PageTokenError(TOKEN_PROBLEM) from exc
    if made_for != fingerprint:
        raise PageTokenError(OTHER_QUERY)
    return at, job_id


def _entry_bytes(size: int) -> int:
    """What one job of `size` bytes costs in the response: its tag, its length varint, itself."""
    return 1 + max(1, (size.bit_length() + 6) // 7) + size


def page(jobs: Sequence[Job] | Callable[[tuple[float, str] | None], Iterable[Job]], *, page_size: int,
         page_token: str, max_bytes: int, fingerprint: str = "", caller: str = "",
         newest_first: bool = False) -> Page:
    """One page of `jobs` (sorted by submission time, then id; newest first: the reverse) after `page_token`.
    `jobs` is the whole sequence, or a function of the token's position giving the jobs after it in order
    (server/job_table.py), so that a page reads only the jobs it serves. The page's jobs take at most
    `max_bytes` less RESERVE_BYTES of the response, unless one job alone is larger."""
    if page_size < 0:
        raise PageTokenError(f"page_size: must not be negative, got {page_size}")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = _decode(page_token, fingerprint, caller) if page_token else None
    budget = max_bytes - RESERVE_BYTES
    out: list[types_pb2.Job] = []
    used = 0
    last: Job | None = None
    for job in jobs(after) if callable(jobs) else jobs:
        if after is not None and ((job.submitted_at, job.job_id) >= after if newest_first
                                  else (job.submitted_at, job.job_id) <= after):
            continue
        if len(out) == size:
            return Page(out, _encode(last, fingerprint, caller)) if last is not None else Page(out, "")
        pb = convert.job_to_pb(job)
        cost = _entry_bytes(pb.ByteSize())
        if out and used + cost > budget:
            return Page(out, _encode(last, fingerprint, caller)) if last is not None else Page(out, "")
        out.append(pb)
        used += cost
        last = job
    return Page(out, "")


__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "RESERVE_BYTES", "STALE", "TOKEN_PROBLEM", "Page", "PageTokenError",
           "TokenSeal", "decode_token", "encode_token", "list_bound", "page", "use_seal", "use_secret"]
