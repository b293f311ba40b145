"""The last tenth of `--max-pending-jobs`, kept for the queues and users holding little: a few floods lock no one out.

Why: the per-queue and per-user caps default to half of `--max-pending-jobs`, and they protect the store, not the
tenants. Outside QA (tenants F8, scaled to `--max-pending-jobs 200`): org-0001 took 100, org-0002 80 (up to the
last tenth, which was then kept for *owners* holding fewer than 20), and org-0003's one user, holding nothing,
took all 20 of that last tenth; org-0004, holding nothing, was refused "the federator's queue is full". At the
defaults that is three organisations refusing the other 997.

The rule (one count read per key, no scan; Submit is on the hot path):

- Below the last tenth only the caps of the queue and of the user apply.
- In the last tenth a Submit passes only if its queue holds fewer than the *floor* and its owner (user; a
  kubectl namespace) does too. The floor is the last tenth shared equally among the queues the policy declares
  plus one for defaultQueue: `max(1, kept // (declared + 1))`. Each declared queue can add at most the floor
  there, so together they cannot fill it: a declared queue holding fewer than the floor always gets in, however
  many others flood. The owners holding the most are the first refused, the store stays bounded by
  `--max-pending-jobs`.
- Equal shares, not weights: a weight is a share of accelerators, a pending job is a row in the store; and an
  equal share is one division per Submit, where weights would be a sum over a thousand queues.
- With no declared queue (one team, or tenants told apart only by user) the queue is not held to a floor (the
  one queue is everybody's) and a user's floor is the whole tenth, as before this rule.
- The guarantee needs the floor to be at least 1 for every queue: `--max-pending-jobs` at least ten times the
  declared queues plus ten (docs/operators.md says so, with `maxPendingJobs` per organisation at national size).
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.security.authz import Submitter


@dataclass(frozen=True)
class KeptRoom:
    """The last tenth of the federator's pending room and the floor of each queue and user in it."""

    limit: int  # --max-pending-jobs
    kept: int  # the last tenth of it
    declared: int  # queues the policy (or Queue objects) declares

    @staticmethod
    def of(limit: int, declared: int) -> KeptRoom:
        return KeptRoom(limit=limit, kept=limit // 10, declared=declared)

    @property
    def floor(self) -> int:
        """What one queue (and one user) may hold and still submit in the last tenth."""
        if not self.declared:
            return self.kept
        return max(1, self.kept // (self.declared + 1))

    def refusal(self, *, pending: int, queue: str, queue_held: int, owner: Submitter, owner_held: int) -> str | None:
        """None if the Submit may go on, else why not (without the retry-after, which the caller adds)."""
        if not self.kept or pending < self.limit - self.kept:
            return None
        floor = self.floor
        if self.declared and queue_held >= floor:
            who = f"queue {queue!r} holds {queue_held}"
        elif owner_held >= floor:
            who = f"{owner} holds {owner_held}"
        else:
            return None
        if self.declared:
            shared = (f"kept for queues and users holding fewer than {floor} each (the last tenth shared among the "
                      f"{self.declared} queues the policy declares and defaultQueue)")
        else:
            shared = f"kept for owners holding fewer than {floor}"
        return (f"the federator's queue is nearly full: {pending} jobs are pending, its limit is {self.limit} "
                f"(--max-pending-jobs), and the last {self.kept} are {shared}; {who}")

    def sizing_problem(self) -> str | None:
        """Why the guarantee does not hold for every declared queue, said once at start; None when it does.
        Below ten times the declared queues plus ten, the floor is 1 and the last tenth is smaller than the queues
        that may each take 1 of it: floods of a few then lock the rest out with a bare "queue is full" (outside
        re-test N2)."""
        need = 10 * (self.declared + 1)
        if not self.declared or self.limit >= need:
            return None
        return (f"--max-pending-jobs {self.limit} is below ten times the {self.declared} declared queues plus ten "
                f"({need}): its last tenth ({self.kept}) cannot keep room for every queue holding little, so a few "
                f"floods can refuse the other queues; raise it to {need} or more, or set maxPendingJobs per queue "
                f"(docs/operators.md)")


__all__ = ["KeptRoom"]
