"""The record of cancels a member has not confirmed (server/unconfirmed_cancels.py): bounded, confirmed by what the
member says, and joined with what was stored when it is read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from federator.model import ClusterCapacity, JobPhase
from federator.server.federator import Federator
from federator.server.orders import CancelOrder
from federator.server.orphans import DELETED_REASON
from federator.server.unconfirmed_cancels import UnconfirmedCancels, decode, encode
from federator.store import SqliteJobStore


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


def test_a_recorded_placement_is_cancelled_at_once_and_what_a_finished_one_left_is_deleted(tmp_path: Path) -> None:
    """Through the federator (server/orphans.py): a recorded placement is no orphan, whatever the grace."""
    fed = Federator(store=SqliteJobStore(tmp_path / "db"), orphan_grace=1800.0)
    fed.orphans.cancels.record("a", ["gone-1.g1.a", "gone-2.g1.a"], now=0.0)
    rec = fed.connect(cluster="a", region="east", labels={})
    fed.job_update(rec, "gone-1.g1.a", JobPhase.RUNNING, "")
    fed.job_update(rec, "gone-2.g1.a", JobPhase.SUCCEEDED, "")  # a finished Job kept in the member: deleted too
    fed.job_update(rec, "unknown.g1.a", JobPhase.RUNNING, "")  # an orphan: held, not cancelled
    orders = [rec.outbox.get_nowait() for _ in range(rec.outbox.qsize())]
    # its job gone, the cancel ends it (Cancel.job_ended, said back on the Cancelled update: server/restored_ends.py)
    assert orders == [CancelOrder("gone-1.g1.a", DELETED_REASON, job_ended=True),
                      CancelOrder("gone-2.g1.a", DELETED_REASON)]
    assert fed.orphans.cancels.entries("a").keys() == {"gone-1.g1.a"}  # the finished one is confirmed
    fed.report(rec, ClusterCapacity(placement_ids=frozenset({"gone-1.g1.a", "unknown.g1.a"})))
    assert [o.placement_id for o in [rec.outbox.get_nowait() for _ in range(rec.outbox.qsize())]
            if isinstance(o, CancelOrder)] == ["gone-1.g1.a"]
    assert fed.metrics.registry.get_sample_value("federator_orphan_placements", {"cluster": "a"}) == 1
