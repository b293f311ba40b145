"""A page token is the server's, but a client sends it back: whatever comes is refused naming page_token, never
answered UNKNOWN with a traceback (red team: a position of 400 digits overflowed the float it became).

And a token is sealed (portal re-test N3): unreadable, bound to the caller and the RPC it was made for, refused
when tampered with; made from the same secret (the TLS serving key, as a restart or a failover to a replica of
the same key derives it) it still reads, and under another key it is refused in words saying to start again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from federator.server.paging import (
    STALE,
    PageTokenError,
    TokenSeal,
    decode_token,
    encode_token,
    list_bound,
    page,
    use_seal,
    use_secret,
)


@pytest.fixture
def seal() -> Iterator[None]:
    """A seal from a known secret for the test, the process's put back after it."""
    before = use_secret(b"serving key of the test")
    yield
    use_seal(before)


def plain(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


@pytest.mark.parametrize("values", [
    [int("1" + "0" * 400), "x", ""],  # an int no float holds
    [float("nan"), "x", ""], [float("-inf"), "x", ""],  # json writes NaN and Infinity: no position either
    ["1", "x", ""], [1.0],
], ids=["huge", "nan", "minus-infinity", "string-position", "short"])
def test_a_sealed_token_holding_no_position_is_refused_naming_the_field(seal: None, values: list[object]) -> None:
    raw = encode_token(*values, bound=list_bound("alice"))
    with pytest.raises(PageTokenError, match="^page_token: not a token this server made"):
        page([], page_size=10, page_token=raw, max_bytes=1 << 20, caller="alice")


@pytest.mark.parametrize("raw", [plain([12.5, "j-1", ""]), plain([12.5, "j-1"]), "not-a-token", "", "AQ"],
                         ids=["readable-json-of-0.7", "readable-json-of-0.6", "garbage", "empty-b64", "too-short"])
def test_an_unsealed_token_is_refused(seal: None, raw: str) -> None:
    with pytest.raises(PageTokenError, match="^page_token: not a token this server made"):
        decode_token(raw or "=", bound=list_bound("alice"))


def test_a_token_is_unreadable_bound_to_its_caller_and_call_and_tamper_proof(seal: None) -> None:
    token = encode_token(1796502589.1355119, "secret-merger-1-adf9f8", "71c354358347ab22", bound=list_bound("bob"))
    assert b"secret-merger" not in base64.urlsafe_b64decode(token + "===")
    assert decode_token(token, bound=list_bound("bob")) == [1796502589.1355119, "secret-merger-1-adf9f8",
                                                            "71c354358347ab22"]
    for bound in (list_bound("alice"), "clusters.list", "jobs.cancel\x00bob"):
        with pytest.raises(PageTokenError, match="^page_token: not a token this server made for this caller"):
            decode_token(token, bound=bound)
    raw = bytearray(base64.urlsafe_b64decode(token + "==="))
    for at in (10, len(raw) - 1):  # the nonce, the tag
        bent = bytearray(raw)
        bent[at] ^= 1
        with pytest.raises(PageTokenError, match="^page_token: not a token this server made"):
            decode_token(base64.urlsafe_b64encode(bytes(bent)).decode(), bound=list_bound("bob"))


def test_a_token_outlives_a_restart_of_the_same_key_and_is_stale_under_another() -> None:
    made = TokenSeal(b"the serving key").seal([12.5, "j-1", "f"], list_bound("alice"))
    assert TokenSeal(b"the serving key").open(made, list_bound("alice")) == [12.5, "j-1", "f"]
    with pytest.raises(PageTokenError) as err:
        TokenSeal(b"a new serving key").open(made, list_bound("alice"))
    assert str(err.value) == STALE and "start again from the first page" in STALE


def test_a_token_of_another_query_is_refused_naming_page_token(seal: None) -> None:
    token = encode_token(12.5, "j-1", "g", bound=list_bound("alice"))
    assert page([], page_size=10, page_token=token, max_bytes=1 << 20, fingerprint="g", caller="alice").jobs == []
    with pytest.raises(PageTokenError, match="^page_token: made for another queue, filter or order"):
        page([], page_size=10, page_token=token, max_bytes=1 << 20, fingerprint="f", caller="alice")
