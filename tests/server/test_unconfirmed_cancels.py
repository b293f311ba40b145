"""The record of cancels a member has not confirmed (server/unconfirmed_cancels.py): bounded, confirmed by what the
member says, and joined with what was stored when it is read back."""

from __future__ import annotations

import pytest

from federator.server.unconfirmed_cancels import UnconfirmedCancels, decode, encode


def test_the_record_is_bounded_and_drops_its_oldest_first() -> None:
    counts: list[tuple[str, int]] = []
    book = UnconfirmedCancels(limit=2 + 3 * (len("job-0.g1.a") + 14), on_count=lambda c, n: counts.append((c, n)))
    assert book.record("a", ["job-0.g1.a", "job-1.g1.a", "job-2.g1.a"], now=1.0) == []
    assert book.record("a", ["job-3.g1.a"], now=2.0) == ["job-0.g1.a"]
    assert list(book.entries("a")) == ["job-1.g1.a", "job-2.g1.a", "job-3.g1.a"]
    assert len(encode(book.entries("a"))) <= book.limit
    assert book.record("a", ["job-3.g1.a"], now=3.0) == []  # already there: no change, no write
    assert counts == [("a", 3), ("a", 3)]
    assert book.unwritten() == ["a"]


def test_a_placement_is_confirmed_when_it_ends_or_a_resync_does_not_name_it() -> None:
    book = UnconfirmedCancels()
    book.record("a", ["held.g1.a", "gone.g1.a", "ended.g1.a"], now=1.0)
    assert book.heard("a", "held.g1.a", ended=False, session=7)
    assert book.heard("a", "ended.g1.a", ended=True, session=7)
    assert not book.heard("a", "other.g1.a", ended=False, session=7)
    book.resynced("a", session=7, listed=[])
    assert list(book.entries("a")) == ["held.g1.a"]  # named in this session: the agent holds it
    book.resynced("a", session=7, listed=[])  # a later report of the session: its absence says nothing
    assert book.holds("a", "held.g1.a")
    book.resynced("a", session=8, listed=[])  # the next session's re-sync did not name it
    assert book.count("a") == 0


def test_what_is_read_back_joins_what_was_recorded_before_and_needs_no_write_of_its_own() -> None:
    book = UnconfirmedCancels()
    book.merge({"a": {"old.g1.a": 5.0}})
    assert book.loaded and book.unwritten() == []
    book.record("b", ["new.g1.b"], now=9.0)
    book.merge({"b": {"stored.g1.b": 4.0}})
    assert list(book.entries("b")) == ["stored.g1.b", "new.g1.b"]
    assert book.unwritten() == ["b"]  # the new one is not stored yet
    version = book.version("b")
    book.written("b", version)
    assert book.unwritten() == []
    book.forget("b")
    assert book.entries("b") == {} and book.unwritten() == []


@pytest.mark.parametrize("text", ["[]", '{"a": "x"}', "not json"], ids=["a-list", "a-string-time", "not-json"])
def test_a_record_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        decode(text)


def test_a_record_reads_back_what_was_written() -> None:
    assert decode(encode({"j.g1.a": 1733390000.5})) == {"j.g1.a": 1733390000.0}
