"""`federator serve` in store mode keeps a quarantine across its restart: server/app.py attaches the SQLite
quarantine store of --db before the first cycle and writes what is due at stop (store/quarantines.py), and
`federator get clusters` shows the kept one with its end and reason. Real processes: the wiring, not a copy."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from federator.cli.get import list_clusters
from federator.local import LocalFederation
from federator.model.quarantine import Held
from federator.store.quarantines import SqliteQuarantineStore

from support import EXAMPLES, eventually

pytestmark = pytest.mark.e2e


def test_a_kept_quarantine_holds_after_a_restart_of_serve_and_an_ended_one_is_deleted(tmp_path: Path) -> None:
    fed = LocalFederation(workdir=tmp_path / "fed", fleet=EXAMPLES / "fleet.yaml", tls=False)
    db = tmp_path / "fed" / "federator.db"
    try:
        fed.start_server()  # makes the store
        assert fed.server is not None
        fed.server.stop()
        kept = SqliteQuarantineStore(db)  # what a quarantine the stopped federator made left in the file
        until = time.time() + 3_600
        kept.put("east-1", Held(until, "3 placements of 2 owners failed (kept)"))
        kept.put("west-1", Held(time.time() - 1, "ended while no federator ran"))
        kept.close()

        fed.start_server()
        fed.start_agent("east-1")
        (east,) = eventually(lambda: [c for c in list_clusters(fed.client) if c["state"] == "Ready"],
                             what="east-1 Ready")
        assert (east["name"], east["quarantined_until"], east["quarantine_reason"]) == \
            ("east-1", until, "3 placements of 2 owners failed (kept)")
        fed.server.stop()  # SIGTERM: what is due is written, the store closed
    finally:
        fed.stop()
    kept = SqliteQuarantineStore(db)
    assert set(kept.load()) == {"east-1"}
    kept.close()
