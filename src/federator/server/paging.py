"""Paging of ListJobs: a page ends at page_size jobs or half the message size limit, whichever comes first.

Unpaged, a few legal jobs with 1 MB annotations made List fail for everyone
("Sent message larger than max"). A page holds at least one job (a job is
within the size limit, or Submit would have refused it), and the token is
the position after the page's last job in submission order, so jobs that
finish or arrive between pages neither repeat nor go missing.
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


def _encode(job: Job) -> str:
    return encode_token(job.submitted_at, job.job_id)


def _decode(token: str) -> tuple[float, str]:
    values = decode_token(token)
    try:
        at, job_id = values
        if not isinstance(at, int | float) or not isinstance(job_id, str) or not math.isfinite(at := float(at)):
            raise ValueError
    except (ValueError, OverflowError) as exc:
        raise PageTokenError(TOKEN_PROBLEM) from exc
    return at, job_id


def page(jobs: Sequence[Job] | Callable[[tuple[float, str] | None], Iterable[Job]], *, page_size: int,
         page_token: str, max_bytes: int) -> Page:
    """One page of `jobs` (sorted by submission time, then id) after `page_token`. `jobs` is the whole sequence,
    or a function of the token's position giving the jobs after it in order (server/job_table.py), so that a
    page reads only the jobs it serves."""
    if page_size < 0:
        raise PageTokenError(f"page_size: must not be negative, got {page_size}")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = _decode(page_token) if page_token else None
    out: list[types_pb2.Job] = []
    used = 0
    last: Job | None = None
    for job in jobs(after) if callable(jobs) else jobs:
        if after is not None and (job.submitted_at, job.job_id) <= after:
            continue
        if len(out) == size:
            return Page(out, _encode(last)) if last is not None else Page(out, "")
        pb = convert.job_to_pb(job)
        if out and used + pb.ByteSize() > max_bytes:
            return Page(out, _encode(last)) if last is not None else Page(out, "")
        out.append(pb)
        used += pb.ByteSize()
        last = job
    return Page(out, "")


__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Page", "PageTokenError", "page"]
