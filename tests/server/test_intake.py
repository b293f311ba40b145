"""server/intake.py: a name held by a job that has not ended is refused, saying what to do instead."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from federator.server.federator import Federator
from federator.server.intake import AlreadyExists
from federator.store import SqliteJobStore

from builders import job


def test_a_pending_jobs_name_submitted_again_with_changes_says_to_cancel_and_resubmit() -> None:
    """Outside QA HPC H8: a pending job's file resubmitted with a new priority got ALREADY_EXISTS and no hint."""
    fed = Federator(store=SqliteJobStore(Path(":memory:")))
    first = fed.submit(job("arr-150", gpus=8))
    with pytest.raises(AlreadyExists) as refused:
        fed.submit(replace(job("arr-150", gpus=8), priority=5))
    said = str(refused.value)
    assert said.startswith(f"metadata.name: job default/arr-150 already exists ({first.job_id}, Pending) and has "
                           "not ended")
    assert "cancel it (federator cancel default/arr-150; a pending job loses its place in the queue) and submit " \
           "again, or submit it under another name (--run-again is for a job that has ended)" in said
