"""Launching a placement: the job rendered for this member, checked, and created, or refused saying why.

Why a module of its own: a launch is the one place the agent writes a user's workload into the member, and most of
it is refusing before anything is created, each refusal a value the federator shows and acts on (another cluster,
or the job Invalid when the API server refused the object itself: `invalid_object`). In order: the chosen
alternative (a CANN or ROCm image, its count per replica) over the job; how this member gives the pool's devices
(a device plugin's resource or a DRA claim: accelerators.py); the workload rendered (workloads/); a kind the member
does not serve; a gang that plainly does not fit now (`_fit`, capacity_report.py) or a pod set no node could ever
take (node_selectors.py); what no pod security level allows, and what the member's own level refuses; the tenant
namespace made ready. Only then is anything created: the DRA claim template, the workload (marked with what it
renders, drift.py), a gang's rendezvous Service. A refusal by the API server says its cause first and, when the cause
is the agent's own set-up (no namespace, no RBAC), what to apply (`refusal`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import replace

from federator.agent.backend import Invalid
from federator.backends.kube import accelerators
from federator.backends.kube.accelerators import AcceleratorRequest, RenderError
from federator.backends.kube.api import (
    JOBS,
    SERVICES,
    ConflictError,
    ForbiddenError,
    InvalidError,
    KubeError,
    NotFoundError,
    Obj,
)
from federator.backends.kube.capacity_report import CapacityReport
from federator.backends.kube.claims import claim_template_name
from federator.backends.kube.drift import record
from federator.backends.kube.kinds import resource_of
from federator.backends.kube.node_selectors import no_node_for
from federator.backends.kube.placement_state import names_of
from federator.backends.kube.tenant_namespaces import RBAC_FIX
from federator.backends.kube.workloads import (
    RenderOptions,
    WorkloadAdapter,
    WorkloadError,
    adapter_for,
    adapter_of,
    build_workload,
    needs_rendezvous,
    rendezvous_service,
)
from federator.backends.kube.workloads.common import templates_at
from federator.model import JobKind, JobSpec, Placement
from federator.model.pod_sets import described, short_in
from federator.podtemplates import (
    ACCELERATOR_MODEL_ANNOTATION,
    JOB_DIGEST_ANNOTATION,
    LAUNCH_SEAL_ANNOTATION,
    merged_over,
    shape_problems,
)
from federator.security import isolation
from federator.security.podsecurity import AGENT_FLAGS, check_object
from federator.security.podsecurity_member import member_refusal, needed_by_object

log = logging.getLogger("federator.agent.kube")


def invalid_object(exc: KubeError) -> bool:
    """The API server refused the object itself as invalid (Ack.invalid, agent.proto): 422 only. Not 400, which
    is also what an admission webhook's denial answers unless it says otherwise (a member's own policy), and
    which a malformed body (the agent's rendering, not the user's spec) answers; not 403/404/409/5xx, which are
    the cluster's (RBAC, quota, a missing namespace, a name race, an API that is down)."""
    return isinstance(exc, InvalidError) and exc.status == 422


def refusal(namespace: str, name: str, what: str, exc: KubeError, *, per_queue: bool = False) -> str:
    """Why the member would not create a placement's object, in the API server's words, and what to do
    when the cause is the agent's own set-up: a member without the workloads namespace, or without the
    agent's RBAC in it, refuses every placement alike, and the API server's words alone (`namespaces
    "federator-workloads" not found`) do not say that a file was not applied.

    The cause comes first, the object's name and the HTTP status after it: the job's pending reason keeps
    only the first 160 characters of a refusal (server/refusals.py), and the name of a placement's object is
    long, so `ns/name: ... HTTP 422 Invalid: Job.batch "name" is invalid: ...` was cut before the field
    was named. The API server's own `Job.batch "name" is invalid: ` is dropped: it names the object again.

    `per_queue`: the namespace is a tenant's, which the agent makes (`--namespace-per-queue`), so a missing one
    was deleted since, and the RBAC to apply is the cluster-wide one."""
    cause = exc.message or str(exc)
    redundant = re.match(r'[\w.-]+ "' + re.escape(name) + r'" is invalid: ', cause)
    if redundant:
        cause = cause[redundant.end():]
    status = f"HTTP {exc.status} {exc.reason}".rstrip() if exc.status else "no answer"
    out = f"the member cluster refused the {what}: {cause} ({status}; {namespace}/{name})"
    fix = ("apply deploy/kubernetes/rbac-agent.yaml in this cluster (or install the federator-agent chart), "
           "or start the agent with the --namespace its placements should run in")
    if per_queue:
        fix = RBAC_FIX
    if isinstance(exc, NotFoundError) and f'namespaces "{namespace}" not found' in str(exc):
        out += (f" (tenant namespace {namespace} was deleted after the agent made it ready; the next launch makes "
                "it again)" if per_queue else f" (the agent's namespace {namespace} does not exist here: {fix})")
    elif isinstance(exc, ForbiddenError) and "cannot create resource" in str(exc):
        out += f" (the agent may not create it in {namespace}: {fix})"
    return out


def digest_annotation(digest: str) -> dict[str, str]:
    """The annotation that keeps a placement's job digest on its workload object (none without one)."""
    return {JOB_DIGEST_ANNOTATION: digest} if digest else {}


def seal_annotation(seal: str) -> dict[str, str]:
    """The annotation that keeps a placement's Launch.seal on its workload object (none without one)."""
    return {LAUNCH_SEAL_ANNOTATION: seal} if seal else {}


def model_annotation(placement: Placement) -> dict[str, str]:
    """The annotation that keeps the model a placement runs on on its workload object (none for CPU-only work):
    a restarted agent says it back (agent/accelerator_models.py)."""
    return {ACCELERATOR_MODEL_ANNOTATION: placement.accelerator_model} if placement.accelerator_model else {}


def chosen_alternative(placement: Placement, spec: JobSpec) -> JobSpec:
    """The job as this placement runs it: the chosen alternative's count per replica and its pod-template
    override (a CANN or ROCm image instead of the CUDA one) merged over the job's template."""
    if not spec.accelerators or not 0 <= placement.alternative < len(spec.accelerators):
        return spec
    alt = spec.accelerators[placement.alternative]
    template = json.loads(spec.pod_template_json) if spec.pod_template_json else {}
    if alt.pod_template_json:
        template = merged_over(template, json.loads(alt.pod_template_json))
    return replace(spec, resources=replace(spec.resources, accelerator_milli=alt.milli),
                   pod_template_json=json.dumps(template) if template else spec.pod_template_json)


class PlacementLaunch(CapacityReport):
    """`launch` and the checks before it creates anything."""

    def keep_digest(self, placement_id: str, digest: str) -> None:
        """The Launch's job digest, written on the workload object the launch creates (agent/job_digests.py)."""
        self._digests[placement_id] = digest

    def digest_of(self, placement_id: str) -> str:
        """The job digest the placement's workload object carries ("" if none): a restarted agent's word."""
        obj = self._workload(placement_id)
        return str(((obj or {}).get("metadata") or {}).get("annotations", {}).get(JOB_DIGEST_ANNOTATION, ""))

    def keep_launch_seal(self, placement_id: str, seal: str) -> None:
        """The Launch's seal, written on the workload object the launch creates (agent/launch_seals.py)."""
        self._seals[placement_id] = seal

    def launch_seal_of(self, placement_id: str) -> str:
        """The seal the placement's workload object carries ("" if none): a restarted agent's word."""
        obj = self._workload(placement_id)
        return str(((obj or {}).get("metadata") or {}).get("annotations", {}).get(LAUNCH_SEAL_ANNOTATION, ""))

    def accelerator_model_of(self, placement_id: str) -> str:
        """The model the placement's workload object says it runs on ("" if none): a restarted agent's word."""
        obj = self._workload(placement_id)
        return str(((obj or {}).get("metadata") or {}).get("annotations", {}).get(ACCELERATOR_MODEL_ANNOTATION, ""))

    async def launch(self, placement: Placement, spec: JobSpec) -> str | None:
        pid = placement.placement_id
        digest = self._digests.pop(pid, "")  # kept with the placement on the member (agent/job_digests.py)
        seal = self._seals.pop(pid, "")  # and its seal (agent/launch_seals.py)
        if pid in self._phases or pid in self._launched:
            if seal:  # a re-sent Launch: its seal is of the federator's key now (agent.proto, Launch.seal)
                await self._reseal(pid, seal)
            return None  # idempotent: this placement runs here already
        spec = chosen_alternative(placement, spec)
        accelerator = self._accelerator(placement, spec)
        if isinstance(accelerator, str):
            return accelerator
        namespace = self.tenants.of(spec.queue)
        try:
            manifest = build_workload(placement, spec, namespace=namespace,
                                      options=RenderOptions(finished_ttl_seconds=self.finished_ttl_seconds,
                                                            cluster_domain=self.cluster_domain,
                                                            annotations=self.identity.annotations()
                                                            | digest_annotation(digest) | seal_annotation(seal)
                                                            | model_annotation(placement),
                                                            accelerator=accelerator if spec.resources.accelerator_milli
                                                            else None))
        except WorkloadError as exc:
            return str(exc)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            # A template of a shape the agent cannot render into: a job a federator stored before it checked
            # shapes at submit (podtemplates.shape_problems). Refused naming the field, not with a traceback.
            shape = shape_problems(json.loads(spec.pod_template_json or "{}"), "spec.template")
            return "the job's pod template cannot be rendered here: " + (
                "; ".join(f"{field}: {problem}" for field, problem in shape) or f"{type(exc).__name__}: {exc}")
        adapter = adapter_for(manifest)
        if adapter.key not in self.served:
            return f"this cluster does not serve {adapter.key} (is its controller installed?)"
        why = self._fit(placement, spec) or self._no_node(manifest, adapter)
        if why:
            return why
        crossing = isolation.problems(manifest, "")  # before the agent's own Kueue label goes on
        if crossing:
            return (f"{self.cluster or 'this member'} refuses what no pod security level allows: "
                    + "; ".join(f"{field}: {problem}" for field, problem in crossing))
        manifest = self.gang.prepare(manifest, pid)  # Kueue mode: the LocalQueue label, suspended
        found = check_object(manifest, policy=self.pod_security, allowed_by=AGENT_FLAGS)
        if found:  # what this member would create, as rendered: nothing of it is created
            return member_refusal(self.cluster, self.pod_security, found, needed_by_object(manifest))
        unready = await asyncio.to_thread(self.tenants.ensure, namespace, spec.queue)
        if unready:
            self.gang.forget(pid)
            return unready
        manifest = record(self.tenants.label(manifest, spec.queue))  # what it renders, kept on the object too
        self.tenants.place(pid, namespace)
        res = resource_of(adapter)
        name = manifest["metadata"]["name"]
        creating = False  # the error is the answer to the workload object's own create, not to what goes with it
        try:
            if accelerator.uses_dra:
                await self.dra.create_template(placement, accelerator, namespace)
            creating = True
            created = await asyncio.to_thread(self.api.create, res, manifest, namespace)
            creating = False
            self.drift.launched(pid, manifest)
            self.gang.created(pid)
            if accelerator.uses_dra:
                await self.dra.own_template(placement, created, namespace)
        except ConflictError:
            log.info("%s %s exists already: placement %s is running here", manifest["kind"], name, pid)
            created = await asyncio.to_thread(self.api.get, res, name, namespace)
        except (InvalidError, ForbiddenError, NotFoundError) as exc:
            self.gang.forget(pid)
            self.tenants.forget(pid)
            if isinstance(exc, NotFoundError):
                self.tenants.gone(namespace)  # deleted since it was made ready: made again next time
            why = refusal(namespace, name, str(manifest["kind"]), exc, per_queue=self.tenants.per_queue)
            return Invalid(why) if creating and invalid_object(exc) else why
        if created.get("kind") == "Job" and needs_rendezvous(created):
            refused = await self._rendezvous(placement, created, namespace)
            if refused:
                self.gang.forget(pid)
                return refused
        self._launched[pid] = placement
        self._cancelled.discard(pid)
        log.info("launched placement %s as %s %s/%s", pid, manifest["kind"], namespace,
                 manifest["metadata"]["name"])
        return None

    async def _reseal(self, pid: str, seal: str) -> None:
        """Write a re-sent Launch's seal over the one the placement's workload object keeps.

        Why: a Launch of a placement the agent holds carries the seal of the federator's key now, and the agent says
        that one back from then on (agent.proto, Launch.seal). Kept in the agent's memory only, a restarted agent
        read the first Launch's seal back from the annotation, which after a seal-key rotation the federator may no
        longer verify (security.md, "The seal key"): the placement was then not adopted after a restore of the
        store, and ran twice. The annotation is patched (a user's template may not set it), the object's uid a
        precondition, and drift.py's record follows, or the drift guard would put the old seal back. A failure is
        logged, never the launch's answer: the placement runs, and the agent's memory says the new seal."""
        obj = self._workload(pid)
        if obj is None:  # made by this process, its watch event not come yet: read from the API
            obj = await self._held_object(pid)
        meta = (obj or {}).get("metadata") or {}
        adapter = adapter_of(obj) if obj is not None else None
        if obj is None or adapter is None or (meta.get("annotations") or {}).get(LAUNCH_SEAL_ANNOTATION) == seal:
            return
        patch = self.drift.resized(pid, obj, {"metadata": {"annotations": {LAUNCH_SEAL_ANNOTATION: seal}}})
        if meta.get("uid"):
            patch.setdefault("metadata", {})["uid"] = meta["uid"]
        try:
            await asyncio.to_thread(self.api.patch, resource_of(adapter), str(meta.get("name", "")), patch,
                                    str(meta.get("namespace", "")))
        except KubeError as exc:
            log.warning("placement %s: its %s %s/%s keeps the seal of its first Launch, not the re-sent one's (%s): "
                        "after a restart of this agent it says that older seal", pid, obj.get("kind"),
                        meta.get("namespace"), meta.get("name"), exc)
            return
        log.info("placement %s: the seal of its re-sent Launch written on its %s %s/%s", pid, obj.get("kind"),
                 meta.get("namespace"), meta.get("name"))

    async def _held_object(self, pid: str) -> Obj | None:
        """The workload object of a placement this process launched, read from the API (None if none is found)."""
        namespace = self.tenants.namespace_of(pid)
        for adapter in list(self.served.values()):
            for name in names_of(adapter, pid):
                try:
                    return await asyncio.to_thread(self.api.get, resource_of(adapter), name, namespace)
                except NotFoundError:
                    continue
                except KubeError:
                    return None
        return None

    def _accelerator(self, placement: Placement, spec: JobSpec) -> AcceleratorRequest | str:
        """How this member gives the placed pool's devices to one replica, or why it cannot."""
        milli = spec.resources.accelerator_milli
        if not milli:
            return AcceleratorRequest()
        usable = self._usable_nodes()
        groups = [g for g in self.device_groups() if g.node in usable]
        group = accelerators.find_group(groups, model=placement.accelerator_model,
                                        vendor=placement.accelerator_vendor)
        if group is None:
            return f"no usable node of {placement.accelerator_model or 'any accelerator'} in this member cluster"
        try:
            request = accelerators.render(group, milli)
        except RenderError as exc:
            return str(exc)
        if request.uses_dra:
            request = replace(request, claim_template_name=claim_template_name(placement.placement_id))
        return request

    def _fit(self, placement: Placement, spec: JobSpec) -> str:
        """Refuse a gang the cluster plainly cannot hold now, so the federator places it elsewhere."""
        gpus = spec.resources.whole_accelerators
        if not gpus or spec.kind is not JobKind.TRAINING:
            return ""
        # The pods of placements cancelled here are going: the federator preempted them for this gang, and
        # counting them refused the gang 2 ms after their workload was deleted, while the victim was placed
        # again in the room it had just freed, and again at every retry (outside QA: a preemption loop).
        # kube-scheduler binds the gang's pods as the victims' terminate.
        pool = self.capacity(leaving=self._cancelled).pool(placement.accelerator_model)
        if spec.pod_sets and placement.replicas == spec.replicas:  # unequal roles, each at its own ask (pod_sets.py)
            short = short_in(pool, spec.pod_sets) if pool else "no usable node"
            return f"the pod sets {described(spec.pod_sets)} do not fit now: {short}" if short else ""
        fits = pool.gang_capacity(gpus) if pool else 0
        if fits < placement.replicas:
            return (f"{placement.replicas} x {gpus} {placement.accelerator_model} accelerators do not fit: "
                    f"{fits} replicas fit on the usable nodes now")
        return ""

    def _no_node(self, manifest: Obj, adapter: WorkloadAdapter) -> str:
        """Refuse a workload no node of this member could ever take: a pod set whose nodeSelector or required node
        affinity matches no node's labels (node_selectors.py)."""
        nodes = list(self.nodes.cache.values())
        if not nodes:  # no node seen yet (the watch not synced): that says nothing of "never"
            return ""
        sets = adapter.pod_sets(manifest)
        for pod_set, template in zip(sets, templates_at(manifest, [p.path for p in sets]), strict=True):
            why = no_node_for(template.get("spec") or {}, nodes, pod_set.path)
            if why:
                return f"{why}: the job cannot run on {self.cluster or 'this member'}"
        return ""

    async def _rendezvous(self, placement: Placement, job: Obj, namespace: str) -> str | None:
        """The headless Service that names a gang's pods, owned by its Job; refuse the placement (and
        delete the Job) when the member will not take it."""
        port = int(next((e.get("value") for c in job["spec"]["template"]["spec"].get("containers") or []
                         for e in c.get("env") or [] if e.get("name") == "MASTER_PORT"), None) or 29500)
        service = rendezvous_service(job, placement, port=port)
        try:
            await asyncio.to_thread(self.api.create, SERVICES, service, namespace)
        except ConflictError:
            pass  # made by an earlier launch of this placement
        except (InvalidError, ForbiddenError, NotFoundError) as exc:
            await asyncio.to_thread(self.api.delete, JOBS, job["metadata"]["name"], namespace)
            return refusal(namespace, job["metadata"]["name"], "rendezvous Service", exc,
                           per_queue=self.tenants.per_queue)
        return None
