"""An array Submit in Kubernetes mode (`federator submit --array`, SubmitRequest.array): it makes the array's
FederatedJob (spec.array), as `kubectl apply` would, and answers the tasks once the controller made them and the
federator accepted them.

Why: in Kubernetes mode the store is the FederatedJobs, and an array is one of them (arrays.py), so the gRPC way
and the kubectl way make the same object: `kubectl get fj` shows the array, `kubectl delete` of it deletes its
tasks, and a new leader finds it. The Submit adds what kubectl cannot say:

- Its checks first, as standalone's (server/arrays.py `check_array`): the array's own, every task's name, and
  every check of a task's spec, so a refusal is the Submit's answer (naming the task), not a Failed object.
- The owner: the tasks are the caller's jobs, as a single Submit's are. The object carries a one-time token
  (`SUBMIT_ANNOTATION`), and the controller takes the owner this federator holds for that token (never what the
  object says: anyone who may create a FederatedJob may write annotations and status). A federator that stops
  between the object's create and its tasks' admission leaves the tasks as a kubectl user's (no owner), as a
  FederatedJob made with kubectl is.
- A retry with the same request_id answers the tasks made before (replayed), as standalone's does: the array
  object carries the request id, and each task `<request_id>.<index>`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping

from federator.backends.kube.api import FEDERATED_JOBS, ConflictError, KubeApi, Obj
from federator.backends.kube.arrays import ARRAY_FIELD, SUBMIT_ANNOTATION, ArrayTasks, array_id_of
from federator.backends.kube.finished_ttl import delete
from federator.jobfile import REQUEST_ID_ANNOTATION
from federator.jobfile_writing import spec_to_document
from federator.model import Job, JobHold, JobPhase, JobSpec
from federator.model.array import ArrayRequest
from federator.security.authz import owner_of, submitter_of
from federator.server.arrays import Submitted, check_array
from federator.server.dependencies import Visible
from federator.server.federator import Federator
from federator.server.submit_errors import SubmitError
from federator.store.errors import StoreUnavailable

WAIT_SECONDS = 60.0  # how long a Submit waits for its tasks' admission before answering UNAVAILABLE
POLL_SECONDS = 0.05


def indices_text(indices: tuple[int, ...]) -> str:
    """Ascending indices as spec.array.indices says them: runs as a-b, joined by commas (`0-9,20,30-31`)."""
    runs: list[str] = []
    start = prev = indices[0]
    for i in (*indices[1:], -2):
        if i == prev + 1:
            prev = i
            continue
        runs.append(f"{start}-{prev}" if prev > start else str(start))
        start = prev = i
    return ",".join(runs)


class ArraySubmits:
    """server/arrays.py's ArrayMaker for Kubernetes mode (set on `Arrays.maker` by the FederatedJob controller)."""

    def __init__(self, fed: Federator, api: KubeApi, tasks: ArrayTasks, cache: Callable[[], Mapping[str, Obj]], *,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        self.fed = fed
        self.api = api
        self.tasks = tasks  # the controller's arrays: the owner of a token is handed to it
        self.cache = cache
        self.wait_seconds = wait_seconds

    async def make(self, spec: JobSpec, request: ArrayRequest, *, request_id: str, hold: JobHold | None,
                   visible: Visible, taken: Callable[[JobSpec, str], SubmitError | None]) -> Submitted:
        _, seen = check_array(self.fed, spec, request, request_id=request_id, hold=hold, visible=visible,
                                  taken=taken)
        rid = request_id or spec.annotation(REQUEST_ID_ANNOTATION)
        if seen is not None and seen.spec.array is not None:  # a retry: the tasks made then
            owner = submitter_of(spec)
            jobs = [job for i in request.indices
                    if (job := self.fed.intake.job_for_request(owner, f"{rid}.{i}")) is not None]
            return Submitted(seen.spec.array.array_id, jobs, True)
        user, groups = owner_of(spec)
        token = secrets.token_hex(16)
        doc = spec_to_document(spec)
        meta = doc["metadata"]
        meta["annotations"] = {**(meta.get("annotations") or {}), SUBMIT_ANNOTATION: token}
        if rid:
            meta["annotations"][REQUEST_ID_ANNOTATION] = rid
        doc["spec"][ARRAY_FIELD] = {"indices": indices_text(request.indices), "maxRunning": request.max_running}
        if hold is not None:
            doc["spec"]["held"] = True
        self.tasks.expected[token] = (user, ",".join(sorted(groups)))
        try:
            created = await asyncio.to_thread(self.api.create, FEDERATED_JOBS, doc, spec.namespace)
        except ConflictError as exc:
            self.tasks.expected.pop(token, None)
            raise SubmitError(f"metadata.name: a FederatedJob {spec.name} exists in namespace {spec.namespace}; "
                              "an array is a FederatedJob of its name: name it otherwise") from exc
        except BaseException:
            self.tasks.expected.pop(token, None)
            raise
        try:
            return await self._accepted(created, request)
        finally:
            self.tasks.expected.pop(token, None)

    async def _accepted(self, created: Obj, request: ArrayRequest) -> Submitted:
        """The tasks, once every one is a job; the array's refusal as a SubmitError; UNAVAILABLE past the wait."""
        meta = created["metadata"]
        ns, name, array_id = meta["namespace"], meta["name"], array_id_of(created)
        end = time.monotonic() + self.wait_seconds
        while True:
            jobs = [job for i in request.indices if (job := self._task(ns, f"{name}-{i}", array_id)) is not None]
            if len(jobs) == len(request.indices):
                return Submitted(array_id, jobs, False)
            status = (self.cache().get(f"{ns}/{name}") or {}).get("status") or {}
            if status.get("phase") == JobPhase.FAILED.value and not status.get("arrayId"):
                await asyncio.to_thread(delete, self.api, created)  # all or none: the object goes too
                raise SubmitError(f"{status.get('message') or 'spec.array: refused'}; the array's FederatedJob "
                                  f"{ns}/{name} was deleted")
            if time.monotonic() > end:
                raise StoreUnavailable(f"array {array_id} was made (FederatedJob {ns}/{name}), but {len(jobs)} of "
                                       f"its {len(request.indices)} tasks are accepted so far (kubectl get fj -n "
                                       f"{ns}); a retry with the same request_id answers them")
            await asyncio.sleep(POLL_SECONDS)

    def _task(self, ns: str, name: str, array_id: str) -> Job | None:
        return next((job for job in self.fed.jobs.named(name) if job.spec.namespace == ns
                     and job.spec.array is not None and job.spec.array.array_id == array_id), None)


__all__ = ["ArraySubmits", "indices_text"]
