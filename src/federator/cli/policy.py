"""`federator policy check FILE`: is this a policy `federator serve --policy` would take? Says what it found.

Why a command group and not `serve --check-policy`: `serve` has sixty flags about stores, sockets and TLS, and a
check run in CI before `helm upgrade` (or by the chart) needs none of them; a `--check-policy` flag would have to
say which of the others it reads and which it ignores. A `policy` noun with a `check` verb is the shape `certs`
already has (`certs init`, `certs issue`), and opens nothing: no store, no socket, no log file.

The check is the federator's own reading (`server/policy_file.read_policy_file`, what serve starts with and what a
reload runs), against the accelerator catalog `--accelerator-catalog` gives, as serve's flag of the same name
does. Exit 0 with a summary, 1 with every problem (one a line, each naming its field), 2 for a bad flag.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from federator.security.authz import Access


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("policy", help="check a scheduling policy file before a federator takes it")
    psub = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    c = psub.add_parser(
        "check", help="validate a policy file exactly as `federator serve --policy` (and its reload) would; "
                      "prints the queues and tenancy found, or every problem naming its field; exit 0 valid, "
                      "1 invalid. Opens no store and no socket: run it in CI before a helm upgrade",
        description="Validate a policy file exactly as `federator serve --policy` and its reload on SIGHUP or on "
                    "change would. Exit 0: valid (a summary on stdout); 1: invalid (each problem on stderr, naming "
                    "the field); 2: a bad flag.")
    c.add_argument("file", type=Path, metavar="FILE", help="the policy YAML")
    c.add_argument("--accelerator-catalog", type=Path, metavar="FILE",
                   help="the catalog the federator is started with (serve --accelerator-catalog), which quota "
                        "model names are checked against (default: the built-in one)")
    c.add_argument("--max-pending-jobs", type=int, default=250_000, metavar="N",
                   help="the federator's --max-pending-jobs, to warn when it is too small for the queues declared "
                        "(default %(default)s, serve's)")
    c.add_argument("--max-pending-jobs-per-user", type=int, default=None, metavar="N",
                   help="the federator's --max-pending-jobs-per-user, the budget of a delegate whose entry sets no "
                        "maxPendingJobs (default: half of --max-pending-jobs, serve's)")
    c.add_argument("--max-unfinished-bytes-per-user", type=int, default=256 << 20, metavar="BYTES",
                   help="the federator's --max-unfinished-bytes-per-user, the budget of a delegate whose entry sets "
                        "no maxUnfinishedBytes (default %(default)s, serve's)")
    c.set_defaults(func=_check)


def _who(access: Access) -> str:
    if access.anyone:
        return "anyone"
    return ", ".join([*sorted(access.users), *(f"group {g}" for g in sorted(access.groups))]) or "nobody"


def _names(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return f"{shown}, and {len(names) - most} more" if len(names) > most else shown


def _check(args: argparse.Namespace) -> int:
    from federator.catalog import CatalogError, use_catalog_file
    from federator.server.kept_room import KeptRoom
    from federator.server.policy_file import PolicyFileError, read_policy_file

    try:
        use_catalog_file(args.accelerator_catalog)
    except CatalogError as exc:
        print(f"federator policy check: --accelerator-catalog: {exc}", file=sys.stderr)
        return 2
    try:
        policy = read_policy_file(args.file)
    except PolicyFileError as exc:
        print(f"{exc.source}: invalid: {len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}",
              file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    config, tenancy = policy.config, policy.tenancy
    queues = sorted(config.queues)
    print(f"{args.file}: valid")
    print(f"queues: {len(queues)} declared" + (f" ({_names(queues)})" if queues else "")
          + f"; defaultQueue weight {config.default_queue.weight:g}")
    if tenancy.multi_tenant:
        print(f"tenancy: {len(tenancy.groups)} groups, {len(tenancy.queue_access)} queues with an access list; "
              f"admins: {_who(tenancy.admins)}; undeclared queues: "
              + ("admins only" if tenancy.closes_undeclared else _who(tenancy.default_access or Access(anyone=True))))
    else:
        print("tenancy: none (single-tenant: any caller may use any queue)")
    per_user_jobs = args.max_pending_jobs_per_user if args.max_pending_jobs_per_user is not None else \
        max(1, args.max_pending_jobs // 2)
    unset = []
    for name, rule in sorted(tenancy.delegates.items()):
        jobs = f"{rule.max_pending_jobs} pending jobs" if rule.max_pending_jobs is not None else \
            f"{per_user_jobs} pending jobs (unset: one user's, --max-pending-jobs-per-user)"
        size = f"{rule.max_unfinished_bytes} unfinished bytes" if rule.max_unfinished_bytes is not None else \
            f"{args.max_unfinished_bytes_per_user} unfinished bytes (unset: one user's, " \
            "--max-unfinished-bytes-per-user)"
        print(f"delegate {name}: may act for users {', '.join(rule.users)}; groups "
              f"{', '.join(rule.groups) or 'none'}; admins {'yes' if rule.admins else 'no'}; budget over every "
              f"user it acts for: {jobs}, {size}")
        if rule.max_pending_jobs is None or rule.max_unfinished_bytes is None:
            unset.append(name)
    if unset:
        one = len(unset) == 1
        print(f"note: {_names(unset)} {'leaves' if one else 'leave'} {'its' if one else 'their'} budget unset "
              "(in part or whole): "
              "past one user's caps (above, from the federator's flags given here) every Submit it makes for "
              "anyone is refused RESOURCE_EXHAUSTED (limit: delegate); `federator whoami` as the delegate shows "
              "its pending jobs now. Set maxPendingJobs and maxUnfinishedBytes to hold more", file=sys.stderr)
    cap = config.max_preemptions_per_cycle
    print(f"preemption: {f'on, at most {cap} victims a cycle' if config.preemption else 'off'}")
    sizing = KeptRoom.of(args.max_pending_jobs, len(queues)).sizing_problem()
    if sizing:
        print(f"warning: {sizing}", file=sys.stderr)
    return 0


__all__ = ["register"]
