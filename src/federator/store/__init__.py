"""Durable job state. SQLite (WAL) by default; the host cluster's CRDs in Kubernetes mode."""

from federator.store.codec import job_from_dict, job_to_dict
from federator.store.sqlite import JobStore, SqliteJobStore

__all__ = ["JobStore", "SqliteJobStore", "job_from_dict", "job_to_dict"]
