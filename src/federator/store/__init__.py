"""Durable job state. SQLite (WAL) by default; the host cluster's CRDs in Kubernetes mode."""

from federator.store.codec import job_from_dict, job_to_dict
from federator.store.errors import StoreError, StoreInUse, StoreUnavailable, StoreUnreadable
from federator.store.sqlite import JobStore, SqliteJobStore

__all__ = ["JobStore", "SqliteJobStore", "StoreError", "StoreInUse", "StoreUnavailable", "StoreUnreadable",
           "job_from_dict", "job_to_dict"]
