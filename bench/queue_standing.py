"""QueueService.List (`federator get queues`) with a national backlog: what a call costs the event loop.

    python bench/queue_standing.py --jobs 100000 --queues 1000 --owners 1000

Builds the real server state (Federator over an in-memory SQLite store, `--jobs` pending jobs spread over
`--queues` declared queues of `--owners` owners, recorded as Submit records them) and the real QueueService, and
times the code a List call runs on the event loop (the state sample a scrape of /metrics makes, the walk for the
caller's standing, the protobuf), without the transport: an administrator's first page (500 queues), every page,
and a tenant who may use one queue, each taking its own state sample (the first call of a second); then a crowd:
`--crowd` tenants' calls back to back, as users polling together make them (the calls of one second share one
sample: server/shared_sample.py). Beside it, the state sample alone: what one scrape of /metrics costs.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import jobs  # noqa: E402

from federator.model import Job, JobId  # noqa: E402
from federator.scheduler import Scheduler  # noqa: E402
from federator.scheduler.policy import policy_from_document  # noqa: E402
from federator.security.auth import Authenticator, RevocationList  # noqa: E402
from federator.security.authz import Authorizer, Principal, recorded_owner, tenancy_from_document  # noqa: E402
from federator.server.edge import Edge  # noqa: E402
from federator.server.federator import Federator  # noqa: E402
from federator.server.queue_service import QueueService  # noqa: E402
from federator.server.state_sample import state_sample  # noqa: E402
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
    p.add_argument("--queues", type=int, default=1_000)
    p.add_argument("--owners", type=int, default=1_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--crowd", type=int, default=100, help="tenants' calls made back to back (one second's crowd)")
    args = p.parse_args()
    logging.disable(logging.WARNING)
    names = [f"org-{i:04d}" for i in range(args.queues)]
    doc = {"tenancy": {"admins": {"users": ["admin"]},
                       "groups": {q: {"users": [f"user{i}" for i in range(k, args.owners, args.queues)]}
                                  for k, q in enumerate(names)}},
           "queues": {q: {"weight": 1 + k % 4, "access": {"groups": [q]}} for k, q in enumerate(names)}}
    fed = Federator(store=SqliteJobStore(Path(":memory:")), report_interval=60.0,
                    scheduler=Scheduler(policy_from_document(doc)))
    for i, request in enumerate(jobs(args.jobs)):
        owner = i % args.owners
        spec = dataclasses.replace(request.spec, queue=names[owner % args.queues])
        job_id = JobId(f"{spec.name}-{i:06x}")
        fed.jobs[job_id] = Job(job_id=job_id, spec=recorded_owner(spec, f"user{owner}"), submitted_at=1_000.0 + i)
    gc.freeze()  # as `serve` does once the jobs are loaded (server/app.py): a collection walks none of them
    service = QueueService(Edge(fed, Authenticator(revocations=RevocationList(None)),
                                authz=Authorizer(tenancy_from_document(doc))))
    admin = Principal("admin", frozenset(), "certificate", admin=True)
    tenant = Principal("user7", frozenset({names[7 % args.queues]}), "certificate")

    def fresh(call: Callable[[], object]) -> Callable[[], object]:
        """`call` as the first of its second: no sample to share (a federator before the shared sample has none)."""
        def run() -> object:
            if hasattr(service, "samples"):
                service.samples.taken = None
            return call()
        return run

    tenants = [Principal(f"user{i}", frozenset({names[i % args.queues]}), "certificate") for i in range(args.crowd)]

    def crowd() -> None:
        fresh(lambda: None)()
        for who in tenants:
            service.answer(who, queue="", size=500, after="")

    def every_page(who: Principal) -> int:
        after, pages = "", 0
        while True:
            resp = service.answer(who, queue="", size=500, after=after)
            pages += 1
            if not resp.next_page_token:
                return pages
            after = resp.queues[-1].name

    assert [q.name for q in service.answer(tenant, queue="", size=500, after="").queues] == [names[7 % args.queues]]
    print(json.dumps({
        "jobs": args.jobs, "queues": args.queues, "owners": args.owners,
        "scrape_state_sample_ms": timed(lambda: state_sample(fed), args.repeat),
        "admin_first_page_ms": timed(fresh(lambda: service.answer(admin, queue="", size=500, after="")), args.repeat),
        "admin_every_page_ms": timed(fresh(lambda: every_page(admin)), args.repeat),
        "tenant_ms": timed(fresh(lambda: service.answer(tenant, queue="", size=500, after="")), args.repeat),
        "crowd": args.crowd, "crowd_ms": timed(crowd, max(1, args.repeat // 3)),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
