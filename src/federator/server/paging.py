"""Paging of ListJobs: a page ends at page_size jobs or at a response of `max_bytes`, whichever comes first.

Unpaged, a few legal jobs with 1 MB annotations made List fail for everyone
("Sent message larger than max"). A page holds at least one job (a job is
within the size limit, or Submit would have refused it), and the token is
the position after the page's last job in the page's order (submission
order, or its reverse), so jobs that finish or arrive between pages neither
repeat nor go missing. The token also carries the fingerprint of the query
it was made for (server/job_listing.py): a position means nothing in another
filter's sequence.

The bound is the whole response's serialized size, field overhead included:
pages were cut at twice --max-message-bytes counting the jobs alone, and a
client that set its receive limit to the 1 MiB the contract named failed on a
1.85 MB page (outside QA, portal m5).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

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


TOKEN_PROBLEM = ("page_token: not a token this server made; use next_page_token of the previous page, or leave it "
                 "empty for the first page")
OTHER_QUERY = ("page_token: made for another queue, filter or order than this request's; send the same ones as for "
               "the first page, or leave page_token empty to start again")
RESERVE_BYTES = 4_096
"""Room a page leaves for the response's other fields (the token, the echoed filter: each bounded far below)."""


def encode_token(*values: object) -> str:
    """An opaque page token holding `values` (JSON): ListJobs' and ListClusters' (server/cluster_list.py)."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> list[object]:
    """The values of a token `encode_token` made; PageTokenError for anything else (a client's, never trusted:
    bad base64, bad JSON, nesting deep enough to exhaust the parser)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise PageTokenError(TOKEN_PROBLEM) from exc
    if not isinstance(values, list):
        raise PageTokenError(TOKEN_PROBLEM)
    return values


def _encode(job: Job, fingerprint: str) -> str:
    return encode_token(job.submitted_at, job.job_id, fingerprint)


def _decode(token: str, fingerprint: str, *, default: bool) -> tuple[float, str]:
    """The position in `token`, which must have been made for the query of `fingerprint`. A token of two values
    (made by a federator before 0.7.0, which knew no filter) reads only for a `default` query."""
    values = decode_token(token)
    try:
        if len(values) == 3:
            at, job_id, made_for = values
        else:
            at, job_id = values
            made_for = fingerprint if default else None
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
         page_token: str, max_bytes: int, fingerprint: str = "", default: bool = True,
         newest_first: bool = False) -> Page:
    """One page of `jobs` (sorted by submission time, then id; newest first: the reverse) after `page_token`.
    `jobs` is the whole sequence, or a function of the token's position giving the jobs after it in order
    (server/job_table.py), so that a page reads only the jobs it serves. The page's jobs take at most
    `max_bytes` less RESERVE_BYTES of the response, unless one job alone is larger."""
    if page_size < 0:
        raise PageTokenError(f"page_size: must not be negative, got {page_size}")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = _decode(page_token, fingerprint, default=default) if page_token else None
    budget = max_bytes - RESERVE_BYTES
    out: list[types_pb2.Job] = []
    used = 0
    last: Job | None = None
    for job in jobs(after) if callable(jobs) else jobs:
        if after is not None and ((job.submitted_at, job.job_id) >= after if newest_first
                                  else (job.submitted_at, job.job_id) <= after):
            continue
        if len(out) == size:
            return Page(out, _encode(last, fingerprint)) if last is not None else Page(out, "")
        pb = convert.job_to_pb(job)
        cost = _entry_bytes(pb.ByteSize())
        if out and used + cost > budget:
            return Page(out, _encode(last, fingerprint)) if last is not None else Page(out, "")
        out.append(pb)
        used += cost
        last = job
    return Page(out, "")


__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "RESERVE_BYTES", "Page", "PageTokenError", "page"]
