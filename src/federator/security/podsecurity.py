"""The Kubernetes Pod Security Standards, checked on the pod templates a job carries, at submit.

Why the federator checks what each member's own admission would check too: it
forwards pod templates from many organisations to other providers' clusters.
A member may run no Pod Security Admission at all, or label its namespaces
`privileged` for its own system work; a privileged container, the host's
network or a hostPath volume reaching it is then the provider's problem, and
the job's owner hears of nothing. Refusing at submit names the field to the
one person who can fix it, before any cluster is touched.

The levels and their rules are those of the Pod Security Standards
(kubernetes.io/docs/concepts/security/pod-security-standards, as the
PodSecurity admission plugin of Kubernetes 1.34 enforces them):

- `privileged`: no rule.
- `baseline` (the default): no host namespaces, privileged containers,
  Windows HostProcess, hostPath volumes, host ports, capabilities beyond the
  runtime's default set, unsafe sysctls, a /proc mount other than Default,
  custom SELinux users, roles or types, AppArmor or seccomp `Unconfined`, or
  a host in a probe or lifecycle handler.
- `restricted`: baseline, and only the volume types a namespace's own quota
  governs, `allowPrivilegeEscalation: false`, `runAsNonRoot: true`, no user 0,
  seccomp RuntimeDefault or Localhost, and every capability dropped
  (`NET_BIND_SERVICE` may be added back).

An operator whose fleet needs more (RDMA training asks for `IPC_LOCK`, some
fabrics for the host's network) allows it by name (`PodSecurity`), rather than
dropping to `privileged`.

A member's agent holds what it launches to its own level the same way
(`federator agent --pod-security`): a provider need not trust the federator's
level, nor jobs stored before the federator's level was raised. The agent
reports its level as cluster labels, and the scheduler's `PodSecurity` filter
sends a job only where its needs would pass: that side, a member's level and a
job's needs against it, is `security/podsecurity_member.py`; this module is the
standard's rules and the check of a template or an object against a level.

Pure: plain dicts in (the JSON of a pod template or a workload object), values
out; no Kubernetes client.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from federator.podtemplates import CONTAINER_LISTS, containers_of


class PodSecurityLevel(StrEnum):
    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


_STRICTNESS = {PodSecurityLevel.PRIVILEGED: 0, PodSecurityLevel.BASELINE: 1, PodSecurityLevel.RESTRICTED: 2}
# Who may allow what a check refuses, as its messages say: the federator's flags at submit, the agent's at launch.
SERVER_FLAGS = "the federator's operator may allow it: federator serve"
AGENT_FLAGS = "this member's operator may allow it: federator agent"


# Docker's and containerd's default capability set: what baseline lets a container add back.
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP",
    "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
# Namespaced sysctls isolated from other pods on the node (the 1.32 list).
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_VOLUMES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected",
    "secret"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
# Beyond the Pod Security Standards: the priority classes every cluster has for its own critical pods (2e9 and
# more). A member cannot refuse them to one namespace without admission configuration, and a pod holding one
# preempts whatever runs on its node: other organisations' placements, the provider's own work.
SYSTEM_PRIORITY_CLASSES = frozenset({"system-node-critical", "system-cluster-critical"})
# Also beyond them: the taints that keep work off a cluster's control plane. A toleration of one (or of every
# taint: `operator: Exists` without a key) with a matching node selector or affinity puts a tenant's pod on the
# provider's control-plane nodes; and `nodeName` skips the member's scheduler, its gang admission and quotas.
CONTROL_PLANE_TAINTS = frozenset({"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"})
# And the taint a cordon puts on a node: a provider cordons a node to drain it for maintenance or repair, and a
# pod that tolerates it lands there all the same (DaemonSets tolerate it; a tenant's job has no need to).
CORDON_TAINT = "node.kubernetes.io/unschedulable"
# And `gitRepo` volumes: deprecated, and on kubelets before 1.28.12, 1.29.7 and 1.30.3 a crafted repository's
# hooks run as root on the node (CVE-2024-10220). A provider's members may run such kubelets, and the federator
# cannot tell which; an init container that clones into an emptyDir does the same safely.
GIT_REPO_VOLUME = "gitRepo"
# Also beyond them: a pod's own scheduler. Another name (a second scheduler a member runs for its own work, or
# one it does not run at all) skips the member's default scheduler, its gang admission and its quotas.
DEFAULT_SCHEDULERS = frozenset({"", "default-scheduler"})
# And the Services a workload kind makes from fields of its own (KubeRay's head Service): any type but ClusterIP
# reaches beyond the cluster (NodePort, LoadBalancer) or names an outside host (ExternalName); a Ray head's
# dashboard takes job submissions without authentication.
SERVICE_TYPES = frozenset({"", "ClusterIP"})
_CAPABILITY = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def capability_name(raw: str) -> str:
    """A capability as the runtimes read it: upper case, without the `CAP_` prefix (`cap_ipc_lock` -> IPC_LOCK)."""
    name = raw.strip().upper()
    return name[4:] if name.startswith("CAP_") else name


@dataclass(frozen=True, slots=True)
class PodSecurity:
    """The level a federator holds every submitted pod template to, and what its operator allows beyond it."""

    level: PodSecurityLevel = PodSecurityLevel.BASELINE
    allowed_capabilities: frozenset[str] = frozenset()  # names as capability_name gives them
    allow_host_network: bool = False  # hostNetwork, and the host ports it implies

    def __post_init__(self) -> None:
        for name in self.allowed_capabilities:
            if capability_name(name) != name or not _CAPABILITY.fullmatch(name):
                raise ValueError(f"pod_security.allowed_capabilities: {name[:80]!r} is not a capability name such as "
                                 "IPC_LOCK (upper case, no CAP_ prefix)")


@dataclass(frozen=True, slots=True)
class Violation:
    """One field a pod template may not have at a level: its path inside the checked object, and why; and
    the allowance that would let it through, if one would (a capability's name, or the host's network)."""

    field: str
    problem: str
    capability: str = ""
    host_network: bool = False

    def allowed_by(self, policy: PodSecurity) -> bool:
        """Whether the policy's allowances let this field through."""
        return bool((self.capability and self.capability in policy.allowed_capabilities)
                    or (self.host_network and policy.allow_host_network))

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


def check_template(template: Mapping[str, Any], *, policy: PodSecurity,
                   allowed_by: str = SERVER_FLAGS) -> list[Violation]:
    """What a pod template (`{metadata, spec}`) breaks at the policy's level; paths start at the template.
    `allowed_by` says whose flags may allow a capability or the host's network (SERVER_FLAGS, AGENT_FLAGS)."""
    if policy.level is PodSecurityLevel.PRIVILEGED:
        return []
    spec = template.get("spec")
    meta = template.get("metadata")
    return _Check(policy, allowed_by).pod(spec if isinstance(spec, Mapping) else {},
                              meta if isinstance(meta, Mapping) else {}, "spec", "metadata")


def check_object(obj: object, *, policy: PodSecurity, allowed_by: str = SERVER_FLAGS) -> list[Violation]:
    """What the pod templates inside a workload object (a JobSet, a RayJob, ...) break: every mapping whose
    `spec` has containers is one, wherever the kind keeps it; what a TrainJob's `podSpecOverrides` (and
    `podTemplateOverrides`) add to the pods of its runtime (volumes, the host's namespaces); and the fields a
    kind turns into pods or Services of its own (`kind_fields`: a Ray cluster's autoscaler and head Service, a
    Kubeflow job's scheduling policy)."""
    if policy.level is PodSecurityLevel.PRIVILEGED:
        return []
    found: list[Violation] = []
    for path, template in pod_templates(obj):
        prefix = f"{path}." if path else ""
        meta = template.get("metadata")
        found += _Check(policy, allowed_by).pod(template["spec"], meta if isinstance(meta, Mapping) else {},
                                    f"{prefix}spec", f"{prefix}metadata")
    for path, override in pod_spec_overrides(obj):
        # Merged by the trainer into the pods of a runtime the federator cannot see: what it adds is checked as
        # a pod spec's (a hostPath volume, hostPID, ...), but restricted's demands on containers are the
        # runtime's to meet (an override's containers carry env and mounts only).
        found += _Check(policy, allowed_by).pod(override, {}, path, f"{path}.metadata", whole=False)
    kinds = _Check(policy, allowed_by)
    for path, node in mappings(obj):
        kinds.kind_fields(node, path)
    return found + kinds.found


def pod_templates(obj: object, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, template) for every pod template inside `obj`: a mapping whose `spec` has containers.

    The walk goes on inside each template it finds: an outer mapping given a `spec.containers` of its own (the
    API server prunes such an unknown field without a word) must not hide the real templates under it."""
    if isinstance(obj, Mapping):
        spec = obj.get("spec")
        if isinstance(spec, Mapping) and any(key in spec for key in CONTAINER_LISTS):
            yield path, obj
        for key, value in obj.items():
            if key != "podTemplateOverrides":  # pod spec fields to merge, checked as such (pod_spec_overrides)
                yield from pod_templates(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from pod_templates(item, f"{path}[{i}]")


def pod_spec_overrides(obj: object, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, override) for each item of a `podSpecOverrides` list inside `obj` (a TrainJob's, Trainer v2.0), and
    the `spec` of each item of a `podTemplateOverrides` list (its successor): pod spec fields the trainer merges
    into the pods of its runtime."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            at = f"{path}.{key}" if path else str(key)
            if key == "podSpecOverrides" and isinstance(value, list):
                yield from ((f"{at}[{i}]", item) for i, item in _items(value))
            elif key == "podTemplateOverrides" and isinstance(value, list):
                yield from ((f"{at}[{i}].spec", _mapping(item.get("spec"))) for i, item in _items(value))
            else:
                yield from pod_spec_overrides(value, at)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from pod_spec_overrides(item, f"{path}[{i}]")


def mappings(obj: object, path: str = "", *, skip: frozenset[str] = frozenset()) -> Iterator[
        tuple[str, Mapping[str, Any]]]:
    """(path, mapping) for every mapping inside `obj`, itself first, not descending into the keys `skip` names."""
    if isinstance(obj, Mapping):
        yield path, obj
        for key, value in obj.items():
            if key not in skip:
                yield from mappings(value, f"{path}.{key}" if path else str(key), skip=skip)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from mappings(item, f"{path}[{i}]", skip=skip)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, Mapping)] if isinstance(value, list) else []


class _Check:
    """One pass over one pod spec; `found` collects the violations in the order of the fields."""

    def __init__(self, policy: PodSecurity, allowed_by: str = SERVER_FLAGS) -> None:
        self.policy = policy
        self.level = policy.level
        self.allowed_by = allowed_by
        self.found: list[Violation] = []

    def no(self, field: str, detail: str = "", *, capability: str = "", host_network: bool = False) -> None:
        self.found.append(Violation(field, f'not allowed under pod security "{self.level}"{detail}',
                                    capability=capability, host_network=host_network))

    def must(self, field: str, what: str) -> None:
        self.found.append(Violation(field, f'must be {what} under pod security "{self.level}"'))

    def pod(self, spec: Mapping[str, Any], meta: Mapping[str, Any], at: str, meta_at: str, *,
            whole: bool = True) -> list[Violation]:
        restricted = self.level is PodSecurityLevel.RESTRICTED
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key) is True and not (key == "hostNetwork" and self.policy.allow_host_network):
                hint = f" ({self.allowed_by} --allow-host-network)" if key == "hostNetwork" else ""
                self.no(f"{at}.{key}", hint, host_network=key == "hostNetwork")
        if spec.get("nodeName"):
            self.no(f"{at}.nodeName", " (the member's scheduler picks the node: nodeName would skip it, its gang "
                                      "admission and its quotas; use nodeSelector or affinity)")
        for i, toleration in _items(spec.get("tolerations")):
            taint = toleration.get("key")
            if taint in CONTROL_PLANE_TAINTS or (not taint and toleration.get("operator") == "Exists"):
                self.no(f"{at}.tolerations[{i}]", " (it tolerates the taint that keeps work off the cluster's "
                                                  "control-plane nodes" + ("" if taint else ", with every other") + ")")
            elif taint == CORDON_TAINT:
                self.no(f"{at}.tolerations[{i}]", " (it tolerates the taint of a cordoned node, which its provider is "
                                                  "draining for maintenance or repair)")
        scheduler = spec.get("schedulerName")
        if scheduler is not None and scheduler not in DEFAULT_SCHEDULERS:
            self.no(f"{at}.schedulerName", f" ({str(scheduler)[:80]!r}: the member's own scheduler places its pods; "
                                           "another would skip its gang admission and its quotas)")
        priority = spec.get("priorityClassName")
        if priority in SYSTEM_PRIORITY_CLASSES:
            self.no(f"{at}.priorityClassName", f" ({priority!r} is for the cluster's own pods: it would preempt "
                                               "any other pod on the node, other jobs' included)")
        context = _mapping(spec.get("securityContext"))
        self.context(context, f"{at}.securityContext")
        for i, sysctl in _items(context.get("sysctls")):
            name = str(sysctl.get("name", ""))
            if name not in SAFE_SYSCTLS:
                self.no(f"{at}.securityContext.sysctls[{i}].name", f" ({name[:80]!r} is not a namespaced, "
                                                                    "node-isolated sysctl)")
        for i, volume in _items(spec.get("volumes")):
            kinds = [k for k in volume if k != "name"]
            if "hostPath" in volume:
                self.no(f"{at}.volumes[{i}].hostPath")
            elif GIT_REPO_VOLUME in volume:
                self.no(f"{at}.volumes[{i}].{GIT_REPO_VOLUME}", " (deprecated, and it runs a repository's hooks as "
                                                                "root on older kubelets, CVE-2024-10220: clone in an "
                                                                "init container into an emptyDir)")
            elif restricted and any(k not in RESTRICTED_VOLUMES for k in kinds):
                kind = next(k for k in kinds if k not in RESTRICTED_VOLUMES)
                self.no(f"{at}.volumes[{i}].{kind}", f" (volumes may be {', '.join(sorted(RESTRICTED_VOLUMES))})")
        for key, value in _mapping(meta.get("annotations")).items():
            if str(key).startswith(APPARMOR_ANNOTATION) and value != "runtime/default" \
                    and not str(value).startswith("localhost/"):
                self.no(f"{meta_at}.annotations[{key}]", f" ({str(value)[:80]!r}: only runtime/default or "
                                                         "localhost/<profile>)")
        containers: list[tuple[str, Mapping[str, Any]]] = [(f"{at}.{kind}[{i}]", c)
                                                            for kind, i, c in containers_of(spec)]
        for where, container in containers:
            self.container(container, where, host_network=spec.get("hostNetwork") is True)
        if restricted and whole:
            self.restricted_pod(context, containers, at)
        return self.found

    def context(self, context: Mapping[str, Any], at: str) -> None:
        """The rules a pod's and a container's securityContext share."""
        if _mapping(context.get("windowsOptions")).get("hostProcess") is True:
            self.no(f"{at}.windowsOptions.hostProcess")
        selinux = _mapping(context.get("seLinuxOptions"))
        if str(selinux.get("type") or "") not in SELINUX_TYPES:
            self.no(f"{at}.seLinuxOptions.type", f" (may be {', '.join(sorted(SELINUX_TYPES - {''}))})")
        for key in ("user", "role"):
            if selinux.get(key):
                self.no(f"{at}.seLinuxOptions.{key}")
        for key, allowed in (("seccompProfile", ("RuntimeDefault", "Localhost")),
                             ("appArmorProfile", ("RuntimeDefault", "Localhost"))):
            kind = _mapping(context.get(key)).get("type")
            if kind is not None and kind not in allowed:
                self.no(f"{at}.{key}.type", f" ({str(kind)[:40]!r}: may be {' or '.join(allowed)})")
        if self.level is PodSecurityLevel.RESTRICTED and context.get("runAsUser") == 0:
            self.no(f"{at}.runAsUser", " (0 is root)")

    def container(self, container: Mapping[str, Any], at: str, *, host_network: bool) -> None:
        context = _mapping(container.get("securityContext"))
        sc = f"{at}.securityContext"
        if context.get("privileged") is True:
            self.no(f"{sc}.privileged")
        self.context(context, sc)
        if context.get("procMount") not in (None, "Default"):
            self.no(f"{sc}.procMount", " (may be Default)")
        caps = _mapping(context.get("capabilities"))
        allowed = (RESTRICTED_CAPABILITIES if self.level is PodSecurityLevel.RESTRICTED else BASELINE_CAPABILITIES)
        added = caps.get("add")
        for j, raw in enumerate(added if isinstance(added, list) else []):
            name = capability_name(str(raw))
            if name not in allowed and name not in self.policy.allowed_capabilities:
                allowable = bool(_CAPABILITY.fullmatch(name))
                self.no(f"{sc}.capabilities.add[{j}]",
                        f" ({str(raw)[:40]!r}; {self.allowed_by} --allow-capability "
                        f"{name if allowable else 'NAME'})", capability=name if allowable else "")
        for j, port in _items(container.get("ports")):
            host_port = port.get("hostPort")
            if host_port not in (None, 0) and not (host_network and self.policy.allow_host_network):
                self.no(f"{at}.ports[{j}].hostPort", host_network=host_network)  # with hostNetwork, it is allowed
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            self.no_host(_mapping(container.get(probe)), f"{at}.{probe}")
        lifecycle = _mapping(container.get("lifecycle"))
        for hook in ("postStart", "preStop"):
            self.no_host(_mapping(lifecycle.get(hook)), f"{at}.lifecycle.{hook}")

    def no_host(self, handler: Mapping[str, Any], at: str) -> None:
        for kind in ("httpGet", "tcpSocket"):
            if _mapping(handler.get(kind)).get("host"):
                self.no(f"{at}.{kind}.host", " (a probe or hook reaches the pod's own address only)")

    def restricted_pod(self, context: Mapping[str, Any], containers: list[tuple[str, Mapping[str, Any]]],
                       at: str, *, added: bool = False) -> None:
        """What restricted asks every container to set (or the pod, for those a pod may set for all). `added`:
        the containers are ones a controller adds to the pod at `at`, whose own fields are checked already."""
        pod_non_root = context.get("runAsNonRoot")
        pod_seccomp = _mapping(context.get("seccompProfile")).get("type")
        if pod_non_root is False and not added:
            self.must(f"{at}.securityContext.runAsNonRoot", "true")
        for where, container in containers:
            sc = _mapping(container.get("securityContext"))
            if sc.get("allowPrivilegeEscalation") is not False:
                self.must(f"{where}.securityContext.allowPrivilegeEscalation", "false")
            non_root = sc.get("runAsNonRoot")
            if non_root is False or (non_root is None and pod_non_root is not True):
                self.must(f"{where}.securityContext.runAsNonRoot", f"true (here or in {at}.securityContext)")
            if _mapping(sc.get("seccompProfile")).get("type") is None and pod_seccomp is None:
                self.must(f"{where}.securityContext.seccompProfile.type",
                          f"RuntimeDefault or Localhost (here or in {at}.securityContext)")
            drop = _mapping(sc.get("capabilities")).get("drop")
            if not isinstance(drop, list) or not any(capability_name(str(d)) == "ALL" for d in drop):
                self.must(f"{where}.securityContext.capabilities.drop", "a list holding ALL")

    def kind_fields(self, node: Mapping[str, Any], at: str) -> list[Violation]:
        """The fields of a workload kind (not of a pod template) that the kind's controller turns into pods and
        Services of its own: found by their names, wherever the kind keeps them, as `pod_templates` finds pods."""
        prefix = f"{at}." if at else ""
        if isinstance(node.get("headGroupSpec"), Mapping):  # a Ray cluster's spec: a RayJob's rayClusterSpec, ...
            self.ray_cluster(node, prefix)
        if isinstance(node.get("serveService"), Mapping):  # a RayService's
            self.service(node["serveService"], f"{prefix}serveService")
        policy = node.get("schedulingPolicy")  # a Kubeflow job's runPolicy: what it asks of the gang scheduler
        if isinstance(policy, Mapping):
            priority = policy.get("priorityClass")
            if priority in SYSTEM_PRIORITY_CLASSES:
                self.no(f"{prefix}schedulingPolicy.priorityClass", f" ({priority!r} is for the cluster's own pods: "
                                                                   "it would preempt any other pod on the node, "
                                                                   "other jobs' included)")
            if policy.get("queue"):
                self.no(f"{prefix}schedulingPolicy.queue", f" ({str(policy['queue'])[:80]!r}: the member's queues "
                                                           "are its operator's and the agent's to pick)")
        return self.found

    def ray_cluster(self, cluster: Mapping[str, Any], prefix: str) -> None:
        """KubeRay adds the autoscaler (`autoscalerOptions`, a container's fields) to the head pod, and makes the
        head's Service from `headGroupSpec.serviceType` and `headService`, its Ingress from `enableIngress`."""
        head = _mapping(cluster.get("headGroupSpec"))
        at = f"{prefix}headGroupSpec"
        kind = head.get("serviceType")
        if kind is not None and kind not in SERVICE_TYPES:
            self.no(f"{at}.serviceType", f" ({str(kind)[:40]!r}: the head's Service may be ClusterIP; the Ray "
                                         "dashboard it exposes takes jobs without authentication)")
        if isinstance(head.get("headService"), Mapping):
            self.service(head["headService"], f"{at}.headService")
        if head.get("enableIngress") is True:
            self.no(f"{at}.enableIngress", " (an Ingress would expose the Ray dashboard, which takes jobs without "
                                           "authentication, beyond the cluster)")
        options = cluster.get("autoscalerOptions")
        scaling = cluster.get("enableInTreeAutoscaling") is True
        if not isinstance(options, Mapping) and not (scaling and self.level is PodSecurityLevel.RESTRICTED):
            return
        pod = _mapping(_mapping(head.get("template")).get("spec"))
        where = f"{prefix}autoscalerOptions"
        container = options if isinstance(options, Mapping) else {}
        self.container(container, where, host_network=pod.get("hostNetwork") is True)
        if scaling and self.level is PodSecurityLevel.RESTRICTED:  # the autoscaler runs only when enabled
            self.restricted_pod(_mapping(pod.get("securityContext")), [(where, container)],
                                f"{at}.template.spec", added=True)

    def service(self, service: Mapping[str, Any], at: str) -> None:
        kind = _mapping(service.get("spec")).get("type")
        if kind is not None and kind not in SERVICE_TYPES:
            self.no(f"{at}.spec.type", f" ({str(kind)[:40]!r}: a Service a job's kind makes may be ClusterIP, "
                                       "reachable inside the cluster only)")


# -- levels compared and said ----------------------------------------------------------------------------


def stricter(a: PodSecurityLevel, b: PodSecurityLevel) -> bool:
    """Whether level `a` refuses more than level `b`."""
    return _STRICTNESS[a] > _STRICTNESS[b]


def describe(policy: PodSecurity) -> str:
    """A policy as a sentence reads it: `baseline`, `baseline with IPC_LOCK and the host network`."""
    extra = [*sorted(policy.allowed_capabilities)] if policy.level is not PodSecurityLevel.PRIVILEGED else []
    if policy.allow_host_network and policy.level is not PodSecurityLevel.PRIVILEGED:
        extra.append("the host network")
    return f"{policy.level} with {' and '.join(extra)}" if extra else str(policy.level)


__all__ = ["AGENT_FLAGS", "BASELINE_CAPABILITIES", "RESTRICTED_CAPABILITIES", "SERVER_FLAGS", "PodSecurity",
           "PodSecurityLevel", "Violation",
           "capability_name", "check_object", "check_template", "describe", "mappings", "pod_spec_overrides",
           "pod_templates", "stricter"]
