"""A FederatedJob made with kubectl has no user, whatever its annotations claim (red team).

docs/security.md: "A FederatedJob created with kubectl has no user: its namespace owns it (Kubernetes RBAC
decides who sees it), and over the gRPC API only admins see it." But the controller submitted the object's
annotations as they were, so `federator.io/user: alice` on an object made by anyone who may create
FederatedJobs in some namespace made the job alice's: alice and her policy groups saw and could cancel it over
the gRPC API, and its accelerator-seconds went to alice in the usage records (`federator usage --by user`).
The owner is now the federator's own record, kept in the status (which only the federator writes), so a
leader that rebuilds the job from the object does not take the annotation back either."""

from __future__ import annotations

import asyncio

from federator.backends.kube.api import FEDERATED_JOBS
from federator.backends.kube.resources import FINALIZER, job_from_resource, job_status
from federator.backends.kube.store import KubeJobStore
from federator.jobfile import parse_job
from federator.model import Job, JobId
from federator.security.auth import Peer
from federator.security.authz import Allowed, Authorizer, Denied, owner_of, stamp_owner

from kube_fakes import FlakyApi, controller

SPEC = {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}}


def test_a_kubectl_federatedjob_claiming_a_user_is_nobodys_and_stays_so_after_a_reload() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            obj = api.create(FEDERATED_JOBS, {
                "apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                "metadata": {"name": "mine", "finalizers": [FINALIZER],
                             "annotations": {"federator.io/user": "alice", "federator.io/groups": "team-a"}},
                "spec": SPEC}, "research")
            await ctl.reconcile("ADDED", obj)
            (job,) = fed.jobs.values()
            assert owner_of(job.spec) == ("", frozenset())
            alice = Authorizer().principal(Peer(None, "certificate", name="alice"))
            assert isinstance(Authorizer().job(alice, job, manage=True), Denied)
        (reloaded,) = KubeJobStore(api).load()  # type: ignore[arg-type]  # a new leader rebuilds it from status
        assert reloaded.job_id == job.job_id
        assert owner_of(reloaded.spec) == ("", frozenset())

    asyncio.run(main())


def test_a_grpc_jobs_owner_comes_back_from_the_status_not_the_annotations() -> None:
    alice = Authorizer().principal(Peer(None, "certificate", name="alice", groups=frozenset({"team-a"})))
    spec = stamp_owner(parse_job({"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
                                  "metadata": {"name": "j", "namespace": "research"}, "spec": SPEC}), alice)
    job = Job(job_id=JobId("j-abc"), spec=spec, submitted_at=100.0)
    cr = {"apiVersion": "federator.io/v1alpha1", "kind": "FederatedJob",
          "metadata": {"name": "j", "namespace": "research",
                       "annotations": {"federator.io/user": "mallory"}},  # edited since by someone with patch
          "spec": SPEC, "status": job_status(job, now=101.0)}
    back = job_from_resource(cr)
    assert back is not None and owner_of(back.spec) == ("alice", frozenset({"team-a"}))
    assert isinstance(Authorizer().job(alice, back, manage=True), Allowed)
