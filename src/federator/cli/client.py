"""`federator submit | get | cancel | scale | watch`: the sub-commands that talk to a running federator's JobService.

This module is their parser and says which module runs each: `submit` (cli/submit.py: the files read and checked
first, cli/job_files.py, each job's request id, cli/request_ids.py, then sent with retries, cli/submit_calls.py),
`get` (cli/get.py), `cancel` (cli/cancel.py, a queue's jobs cli/bulk_cancel.py), `scale` (cli/scale.py) and `watch`
(cli/watch.py). How a command reaches a federator and says a failed call is cli/calls.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from federator.cli import bulk_cancel, calls, cancel, get, job_list, orphan_cancel, queue_view, scale, submit, watch
from federator.cli.arg_types import seconds
from federator.cli.calls import CALL_TIMEOUT, DEFAULT_SERVER, connect, server_arguments

# A command module written against this module when it held these still imports them from here (their homes:
# cli/calls.py, cli/arg_types.py, cli/watch.py); new code imports them from their homes.
_fail, _server, _seconds, _watch_can_resume = calls.fail, server_arguments, seconds, watch.can_resume
WATCH_PATIENCE = watch.WATCH_PATIENCE


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("submit", help="submit FederatedJob files")
    s.add_argument("-f", "--filename", type=Path, action="append", required=True,
                   help="job file or folder of job files (repeatable), or - for standard input; every file is "
                        "checked before any job is sent, so one bad file sends none")
    s.add_argument("--timeout", type=seconds, default=submit.SUBMIT_PATIENCE, metavar="SECONDS",
                   help="how long each job's submission may take, retries included, before the federator is "
                        "reported as not answering (default %(default)s)")
    s.add_argument("--run-again", action="store_true",
                   help="run a job whose earlier run has finished again, under the same name (a new job; without "
                        "it, submitting the same file again returns the job it made)")
    s.add_argument("--strict", action="store_true",
                   help="a warning is an error: the federator checks every job first (it can never run as the "
                        "fleet stands, a model no member has, an unknown template key) and none is submitted unless "
                        "none draws a warning (exit 1); a federator before 0.15.0 cannot check without submitting: "
                        "a job that draws one is then cancelled at once, the jobs before it staying submitted")
    s.add_argument("--max-request-bytes", type=submit.request_bytes, default=submit.MAX_REQUEST_BYTES, metavar="BYTES",
                   help="the largest job the CLI sends: the federator's --max-message-bytes, if its operator "
                        "raised it (default %(default)s)")
    s.add_argument("--hold", action="store_true",
                   help="submit the jobs held: each waits, never placed, until `federator release` (a job file's "
                        "spec.held: true does the same for its job; cli/hold.py)")
    s.add_argument("--after", action="append", default=[], metavar="JOB",
                   help="each job waits until JOB (a job id, namespace/name or name) has Succeeded, and fails if it "
                        "fails (sbatch --dependency=afterok); an array id (submit --array printed it) waits for "
                        "every task of the array; repeatable; the federator keeps the chain "
                        "(spec.dependsOn in a job file does the same)")
    s.add_argument("--after-any", action="append", default=[], metavar="JOB",
                   help="each job waits until JOB has ended, however (sbatch --dependency=afterany); repeatable")
    s.add_argument("--after-not-ok", action="append", default=[], metavar="JOB",
                   help="each job waits until JOB has failed or been cancelled, and fails if it succeeds (sbatch "
                        "--dependency=afternotok: a clean-up or a fallback); repeatable")
    s.add_argument("--after-start", action="append", default=[], metavar="JOB",
                   help="each job waits until JOB has started running, and fails if JOB ends before it starts "
                        "(sbatch --dependency=after: an RL pipeline's rollout workers once its learner runs; "
                        "spec.clusters.sameAs keeps them in its cluster); repeatable")
    s.add_argument("--array", default=None, metavar="INDICES",
                   help="submit a job array (sbatch --array): one task per index, named NAME-INDEX, each with "
                        "FEDERATOR_ARRAY_TASK_ID in its env; INDICES as 0-99, 1,3,5-7 or 0-15:4, and %%N for at most N "
                        "running at once (the federator keeps it); one job document; cancel every task with "
                        "`federator cancel ARRAY_ID` (cli/submit_array.py)")
    s.add_argument("--prefer", choices=["cheapest"], default=None,
                   help="what decides among the places that fit each job: cheapest, the lowest "
                        "federator.io/price-per-accelerator-hour first (SkyPilot's default); as spec.prefer in a job "
                        "file, over what the file says; a federator before 0.19.0 drops it, and the job is taken back")
    s.add_argument("--accelerator-catalog", type=Path, metavar="FILE",
                   help="the federator operator's accelerator catalog file, so job files may name the resources of "
                        "vendors it adds; without it the CLI leaves vendors it does not know to the federator")
    server_arguments(s)
    s.set_defaults(func=submit.run)

    g = sub.add_parser("get", help="list jobs, clusters or queues")
    g.add_argument("what", choices=["jobs", "job", "clusters", "queues"], help="what to list")
    g.add_argument("name", nargs="?", help="one job: its id, namespace/name, or its name (the newest job of that "
                   "name; a name in several namespaces is refused, listing them); or one cluster or queue by name")
    g.add_argument("-o", "--output", choices=["table", "wide", "json", "yaml"], default="table")
    g.add_argument("--queue", default="", help="only jobs of this queue")
    g.add_argument("--page-size", type=get.page_size, default=0, metavar="N",
                   help="fetch jobs (or clusters) N at a time, 1 to 1000 (default: the server's, 500)")
    job_list.add_arguments(g)
    server_arguments(g)
    g.set_defaults(func=get.run)
    queue_view.within_get(g)  # `get queues` (cli/queue_view.py)

    c = sub.add_parser("cancel", help="cancel jobs, or a queue's jobs (--queue), or orphans (--orphans, admins)",
                       description="Cancel the jobs named, each in turn (as kubectl delete takes several), or the "
                                   "jobs a selection takes (--queue or --all-queues, with --phase, --owner, "
                                   "--name-prefix, -l; not together with jobs named). Each job's outcome is printed; "
                                   "a job that had already ended is said so and is no failure. Exit status: 0 when "
                                   "every job named was cancelled or had ended; else the first failure's (3: not "
                                   "found, 1: refused), the others still cancelled; 4 when the federator stopped "
                                   "answering: the jobs not tried are named, and the same command again is safe.")
    c.add_argument("jobs", nargs="*", metavar="JOB",
                   help="job id, namespace/name, or name (a name in several namespaces is refused, listing them), "
                        "or an array's id (every task of it); several are cancelled in turn")
    c.add_argument("--array", default=None, metavar="ARRAY_ID", type=job_list.array_id,
                   help="cancel every task of this array you may cancel, as `get jobs --array` lists them (as "
                        "`cancel ARRAY_ID`, not tried as a job's id first); not with jobs named or a selection")
    bulk_cancel.add_arguments(c)
    orphan_cancel.add_arguments(c)
    server_arguments(c)
    c.set_defaults(func=cancel.run)

    sc = sub.add_parser("scale", help="set the replica count of an inference job; its running replicas keep serving",
                        description="Set the replica count of an inference job that has not ended. Scaling up "
                                    "keeps every running placement and places the difference; scaling down shrinks "
                                    "placements in place where the member's agent can resize (the others keep "
                                    "serving), and stops whole placements on members whose agent cannot (one may "
                                    "be replaced by a smaller one). Training jobs (a gang's size is fixed) are "
                                    "refused.")
    sc.add_argument("job", help="job id, namespace/name, or name (a name in several namespaces is refused, "
                                "listing them)")
    sc.add_argument("--replicas", type=int, required=True, metavar="N",
                    help="the new spec.replicas: from 1 to the federator's limit, no fewer than the job's "
                         "spec.regions.minRegions")
    server_arguments(sc)
    sc.set_defaults(func=scale.run)

    w = sub.add_parser("watch", help="stream job changes")
    w.add_argument("job", nargs="?", default="", help="one job (default: every job)")
    w.add_argument("--queue", default="", help="only jobs of this queue (with --name-prefix: a set of jobs, as "
                                               "armadactl watch QUEUE JOBSET)")
    w.add_argument("--namespace", default="", help="only jobs of this namespace")
    w.add_argument("--name-prefix", default="", metavar="PREFIX", help="only jobs whose name starts with PREFIX")
    w.add_argument("--owner", default="", metavar="USER", help="only jobs this user submitted")
    w.add_argument("--array", default=None, metavar="ARRAY_ID", type=job_list.array_id,
                   help="only the tasks of this array; these select as `get jobs` does (the CLI keeps them)")
    job_list.add_selector_argument(w, "only jobs")
    w.add_argument("--reconnect-for", type=seconds, default=watch.WATCH_PATIENCE, metavar="SECONDS",
                   help="how long to keep trying to reconnect to a federator that went away (a restart) before "
                        "giving up (default %(default)s)")
    server_arguments(w)
    w.set_defaults(func=watch.run)


__all__ = ["CALL_TIMEOUT", "DEFAULT_SERVER", "WATCH_PATIENCE", "connect", "register"]
