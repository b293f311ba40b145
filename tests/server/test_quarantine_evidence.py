"""Whose word a quarantine rests on (server/quarantine.py, blame.py): one organisation, or one provider, cannot
take a competitor's cluster out of scheduling by itself.

Outside QA, red team: S2, one organisation's two users ran three jobs that crashed only on a target cluster (a
container can tell where it runs) and ran elsewhere, and the target took no one's work for 30 minutes; S4, a
provider that claimed to run other tenants' crashing jobs (reporting their once-more placements Running) had the
honest cluster they crashed on quarantined. Now owners who share a tenancy group are one organisation, and the
witnesses (the clusters where the jobs then ran) must be of two providers where the fleet has two besides the
accused cluster.
"""

from __future__ import annotations

from federator.security.authz import Submitter
from federator.server.blame import Blame
from federator.server.quarantine import Evidence, Quarantine, QuarantinePolicy, organisations_among

PROVIDERS = {"honest-1": "", "honest-2": "", "acme-x": "acme", "globex-1": "globex"}


def quarantine(besides: int = 2) -> Quarantine:
    return Quarantine(QuarantinePolicy(failures=3), ready=lambda: 9, provider_of=lambda c: PROVIDERS.get(c, ""),
                      providers_besides=lambda cluster: besides)


def blame(who: str, witness: str, *groups: str) -> Blame:
    return Blame("honest-1", Submitter(user=who), 10.0, ran_since=5.0, groups=frozenset(groups), witness=witness)


def test_one_organisations_two_users_are_one_owner() -> None:
    q = quarantine()
    for b in (blame("alice", "honest-2", "org-a"), blame("alice2", "globex-1", "org-a"),
              blame("alice", "honest-2", "org-a")):
        assert q.confirm(b, 10.0) is None
    assert q.confirm(blame("bob", "globex-1", "org-b"), 10.0) is not None  # a second organisation: evidence


def test_one_providers_word_does_not_quarantine_where_two_others_could_witness() -> None:
    q = quarantine(besides=2)  # the fleet has the federation's own clusters and acme besides honest-1
    for who in ("alice", "bob", "carol"):
        assert q.confirm(blame(who, "acme-x"), 10.0) is None
    assert q.confirm(blame("dave", "honest-2"), 10.0) is not None  # a second provider saw the jobs run


def test_where_one_other_provider_is_all_the_fleet_has_its_word_is_enough() -> None:
    q = quarantine(besides=1)
    held = [q.confirm(blame(who, "honest-2"), 10.0) for who in ("alice", "bob", "carol")]
    assert held[-1] is not None and held[:2] == [None, None]


def test_organisations_are_owners_joined_by_shared_groups() -> None:
    def e(who: str, *groups: str) -> Evidence:
        return Evidence(0.0, Submitter(user=who), frozenset(groups), "")

    assert organisations_among([e("a"), e("b")]) == 2
    assert organisations_among([e("a", "x"), e("b", "x")]) == 1
    assert organisations_among([e("a", "x"), e("b", "y"), e("c", "x", "y")]) == 1  # c joins both
    assert organisations_among([e("a", "x"), e("b", "y"), e("a")]) == 2


def test_the_federator_reads_the_owners_groups_and_the_witnesses_providers() -> None:
    """Wired: the groups recorded on the jobs (the callers' certificates) make alice and alice2 one organisation,
    and the once-more placements' cluster is the witness, its provider read from its labels."""
    from server_support import Clock, MemoryStore, capacity, make, spec
    from test_early_failures import POLICY, crash

    from federator.model import JobPhase
    from federator.security.authz import recorded_owner

    clock = Clock()
    fed = make(MemoryStore(), clock, early_failures=POLICY)
    target = fed.connect(cluster="honest-1", region="r", labels={})
    fed.report(target, capacity())
    owners = (("alice", "org-a"), ("alice2", "org-a"), ("alice", "org-a"))
    jobs = [fed.submit(recorded_owner(spec(f"j{i}"), who, org))
            for i, (who, org) in enumerate(owners)]
    fed.schedule_once()
    for job in jobs:
        crash(fed, target, job.placements[0].placement_id, after=1.0, clock=clock)
    witness = fed.connect(cluster="honest-2", region="r", labels={})
    fed.report(witness, capacity())
    fed.schedule_once()
    for job in jobs:
        (p,) = job.placements
        fed.acked(witness, p.placement_id)
        fed.job_update(witness, p.placement_id, JobPhase.SUCCEEDED, "")
    assert fed.early.quarantine.current(clock.now) == frozenset()  # one organisation's word
    assert [e.groups for e in fed.early.quarantine._failures["honest-1"]] == [frozenset({"org-a"})] * 3
