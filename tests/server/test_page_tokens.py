"""A page token is the server's, but a client sends it back: whatever comes is refused naming page_token, never
answered UNKNOWN with a traceback (red team: a position of 400 digits overflowed the float it became)."""

from __future__ import annotations

import base64
import json

import pytest

from federator.server.paging import PageTokenError, page


def token(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


@pytest.mark.parametrize("raw", [
    token([int("1" + "0" * 400), "x"]),  # an int no float holds
    base64.urlsafe_b64encode(b'[NaN, "x"]').decode(),  # json reads NaN and Infinity: no position either
    base64.urlsafe_b64encode(b'[-Infinity, "x"]').decode(),
    token(["1", "x"]), token([1.0]), "not-a-token",
], ids=["huge", "nan", "minus-infinity", "string-position", "short", "garbage"])
def test_a_token_this_server_did_not_make_is_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(PageTokenError, match="^page_token: not a token this server made"):
        page([], page_size=10, page_token=raw, max_bytes=1 << 20)


def test_a_token_the_server_made_still_reads() -> None:
    assert page([], page_size=10, page_token=token([12.5, "j-1"]), max_bytes=1 << 20).jobs == []


def test_a_token_from_before_filters_reads_only_for_a_plain_query() -> None:
    """A federator before 0.7.0 made [position, id] tokens (no filter to bind): during an upgrade they read on for
    a queue-only, oldest-first List, and are refused naming page_token for a filtered one, whose sequence they
    were never a position in."""
    old = token([12.5, "j-1"])
    assert page([], page_size=10, page_token=old, max_bytes=1 << 20, fingerprint="f", default=True).jobs == []
    with pytest.raises(PageTokenError, match="^page_token: made for another queue, filter or order"):
        page([], page_size=10, page_token=old, max_bytes=1 << 20, fingerprint="f", default=False)
    with pytest.raises(PageTokenError, match="^page_token: made for another queue, filter or order"):
        page([], page_size=10, page_token=token([12.5, "j-1", "g"]), max_bytes=1 << 20, fingerprint="f")
