"""ListJobs pages with a national backlog: what a page costs the event loop, for an administrator and a tenant.

    python bench/list_pages.py --jobs 100000 --owners 1000

Builds the real server state (Federator over an in-memory SQLite store, with `--jobs` jobs of `--owners` owners,
recorded as Submit records them) and the real JobService, and times the code a List call runs on the event
loop (the tenancy policy, the job table's indexes, paging into protobuf), without the transport: the first page,
a page deep in the backlog, and a tenant's page. Before the job table, each page sorted every job and asked the
policy about each (docs/benchmarks.md). With filters (ListJobsFilter, server/job_listing.py): one owner's jobs
newest first (read from the owner's index), and the worst case, a phase no job is in, which reads every job
the caller may see to answer an empty page.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import jobs  # noqa: E402

from federator.model import Job, JobId, JobPhase  # noqa: E402
from federator.security.auth import Authenticator, RevocationList  # noqa: E402
from federator.security.authz import Authorizer, Principal, recorded_owner, tenancy_from_document  # noqa: E402
from federator.server.federator import Federator  # noqa: E402
from federator.server.job_listing import Query  # noqa: E402
from federator.server.paging import encode_token, page  # noqa: E402
from federator.server.services import JobService  # noqa: E402
from federator.store import SqliteJobStore  # noqa: E402


def timed(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t)
    return round(best * 1e3, 2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--owners", type=int, default=1_000)
    p.add_argument("--page-size", type=int, default=500)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    logging.disable(logging.WARNING)
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0)
    for i, request in enumerate(jobs(args.jobs)):
        spec = request.spec
        job_id = JobId(f"{spec.name}-{i:06x}")
        fed.jobs[job_id] = Job(job_id=job_id, spec=recorded_owner(spec, f"user{i % args.owners}"),
                               submitted_at=1_000.0 + i)
    policy = tenancy_from_document({"tenancy": {"admins": {"users": ["admin"]}}})
    service = JobService(fed, Authenticator(revocations=RevocationList(None)), authz=Authorizer(policy))
    admin = Principal("admin", frozenset(), "certificate", admin=True)
    tenant = Principal("user7", frozenset(), "certificate")
    deep = encode_token(1_000.0 + args.jobs * 0.9, "")

    def one(who: Principal, token: str) -> None:
        page(lambda after: service._visible(who, after=after), page_size=args.page_size, page_token=token,
             max_bytes=4 << 20)

    def filtered(who: Principal, query: Query) -> None:
        page(lambda after: service._visible(who, after=after, query=query), page_size=args.page_size,
             page_token="", max_bytes=4 << 20, fingerprint=query.fingerprint, default=query.is_default,
             newest_first=query.newest_first)

    print(json.dumps({
        "jobs": args.jobs, "owners": args.owners, "page_size": args.page_size,
        "admin_first_page_ms": timed(lambda: one(admin, ""), args.repeat),
        "admin_page_at_90pct_ms": timed(lambda: one(admin, deep), args.repeat),
        "tenant_first_page_ms": timed(lambda: one(tenant, ""), args.repeat),
        "tenant_page_at_90pct_ms": timed(lambda: one(tenant, deep), args.repeat),
        "admin_one_owner_newest_ms": timed(lambda: filtered(admin, Query(owner="user7", newest_first=True)),
                                           args.repeat),
        "admin_no_job_in_phase_ms": timed(lambda: filtered(admin, Query(phases=frozenset({JobPhase.FAILED}))),
                                          args.repeat),
        "tenant_no_job_in_phase_ms": timed(lambda: filtered(tenant, Query(phases=frozenset({JobPhase.FAILED}))),
                                           args.repeat),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
