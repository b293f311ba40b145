"""A federator whose --db file is deleted or replaced while it runs acknowledges nothing more, and says why.

Outside SRE F1: after `rm fed.db` the federator acknowledged 300 Submits into the unlinked file, all lost at the
next start, with no log line, metric or alert.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import grpc
import pytest
from prometheus_client import generate_latest
from server_support import job_api, spec

from federator.api import convert
from federator.api.v1 import jobs_pb2
from federator.metrics import Metrics
from federator.server import store_health
from federator.server.federator import Federator
from federator.store import SqliteJobStore


def _replace(db: Path) -> None:
    other = db.with_name("restored.db")
    SqliteJobStore(other).close()  # a store of its own: an empty one, as a mistaken restore would be
    os.replace(other, db)


@pytest.mark.parametrize("lose", [Path.unlink, _replace], ids=["deleted", "replaced"])
def test_a_submit_after_the_db_file_is_lost_is_unavailable_naming_the_cause_and_counted(
        tmp_path: Path, lose: object) -> None:
    db = tmp_path / "fed.db"
    store = SqliteJobStore(db)
    metrics = Metrics()
    fed = Federator(store=store, metrics=metrics)
    fed.journal.on_error = store_health.count_errors(metrics)
    metrics.store_file_gone.set_function(lambda: float(store.file.state().value != "same"))  # as app.py
    fed.submit(spec("before"))

    async def scenario() -> grpc.RpcError:
        async with job_api(fed) as stub:
            lose(db)  # type: ignore[operator]
            with pytest.raises(grpc.RpcError) as got:
                await stub.Submit(jobs_pb2.SubmitRequest(spec=convert.spec_to_pb(spec("during")), request_id="r-1"))
            return got.value

    refused = asyncio.run(scenario())
    assert refused.code() is grpc.StatusCode.UNAVAILABLE
    assert refused.details().startswith(f"the job store file {db} was ")
    assert refused.details().endswith("; the job was not accepted")
    said = generate_latest(metrics.registry).decode()
    assert 'federator_store_write_errors_total{reason="file_gone"} 1.0' in said
    assert "federator_store_file_gone 1.0" in said
    assert [j.spec.name for j in fed.list_jobs()] == ["before"]  # nothing acknowledged, nothing kept in memory
    store.close()
    left = sqlite3.connect(db).execute("SELECT count(*) FROM jobs").fetchone()[0] if db.exists() else 0
    assert left == 0  # the file at the path never got the refused job either
