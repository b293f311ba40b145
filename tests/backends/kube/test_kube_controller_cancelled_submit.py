"""A controller stopped while a FederatedJob's submit is being stored leaves the store's expectation to that write.

The controller tells the store the next job of a name is its object's (`KubeJobStore.expect`), submits, and takes
the expectation back if the submission made no job (`unexpect`, test_kube_controller_expect.py). Stopped (a
shutdown, a lost lease: `FederatedJobController.stop` cancels its workers) while the job's write was on its way, it
took the expectation back all the same, and the write then found no owner: the store created an object for the job
as for a gRPC one, met the FederatedJob itself (409), and, the job's dependsOn resolved from names to ids, judged it
"another spec": the accepted job was refused with `FederatedJob ... exists and is not this job's (another spec)`.
Found by a test-bed test whose failure stopped the controller with a dependent's write in flight (tests/kube/
test_kube_arrays_testbed.py).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from federator.backends.kube.api import FEDERATED_JOBS

from kube_fakes import FlakyApi, controller, federated_job
from support import until

SPEC = {"kind": "training", "replicas": 1, "resources": {"cpu": "1"}}


def test_a_dependent_whose_submit_is_cancelled_while_it_is_stored_is_written_to_its_own_object() -> None:
    async def main() -> None:
        api = FlakyApi()
        async with controller(api) as (fed, ctl):
            await ctl.reconcile("ADDED", federated_job(api, "prep", SPEC))
            (prep,) = fed.jobs.named("prep")
            gate = threading.Event()
            put = ctl.store.put

            def held(jobs: Any) -> None:  # the writer thread: train's write waits for the gate
                jobs = list(jobs)
                if any(j.spec.name == "train" for j in jobs):
                    gate.wait(timeout=30)
                put(jobs)

            ctl.store.put = held
            train = federated_job(api, "train", {**SPEC, "dependsOn": {"jobs": ["prep"]}})
            submitting = asyncio.ensure_future(ctl.reconcile("ADDED", train))
            await until(lambda: bool(fed.intake.arrivals("research", "train")))  # reserved, its write held
            submitting.cancel()  # as FederatedJobController.stop cancels its workers
            await asyncio.gather(submitting, return_exceptions=True)
            gate.set()
            await until(lambda: not fed.intake.arrivals("research", "train"))

            (job,) = fed.jobs.named("train")  # accepted, not refused
            assert job.spec.depends_on is not None and job.spec.depends_on.jobs == (prep.job_id,)
            obj = api.get(FEDERATED_JOBS, "train", "research")
            assert obj["metadata"]["uid"] == train["metadata"]["uid"]
            assert obj["status"]["jobId"] == job.job_id  # its status written on the object it was submitted for
            assert ctl.store.owner_of(job.job_id) is not None

    asyncio.run(main())
