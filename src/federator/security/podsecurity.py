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

Pure: plain dicts in (the JSON of a pod template or a workload object), values
out; no Kubernetes client.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PodSecurityLevel(StrEnum):
    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


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
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
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
    """One field a pod template may not have at a level: its path inside the checked object, and why."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


def check_template(template: Mapping[str, Any], *, policy: PodSecurity) -> list[Violation]:
    """What a pod template (`{metadata, spec}`) breaks at the policy's level; paths start at the template."""
    if policy.level is PodSecurityLevel.PRIVILEGED:
        return []
    spec = template.get("spec")
    meta = template.get("metadata")
    return _Check(policy).pod(spec if isinstance(spec, Mapping) else {},
                              meta if isinstance(meta, Mapping) else {}, "spec", "metadata")


def check_object(obj: object, *, policy: PodSecurity) -> list[Violation]:
    """What the pod templates inside a workload object (a JobSet, a RayJob, ...) break: every mapping whose
    `spec` has a list of containers is one, wherever the kind keeps it."""
    if policy.level is PodSecurityLevel.PRIVILEGED:
        return []
    found: list[Violation] = []
    for path, template in pod_templates(obj):
        prefix = f"{path}." if path else ""
        meta = template.get("metadata")
        found += _Check(policy).pod(template["spec"], meta if isinstance(meta, Mapping) else {},
                                    f"{prefix}spec", f"{prefix}metadata")
    return found


def pod_templates(obj: object, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, template) for every pod template inside `obj`: a mapping whose `spec` lists containers."""
    if isinstance(obj, Mapping):
        spec = obj.get("spec")
        if isinstance(spec, Mapping) and isinstance(spec.get("containers"), list):
            yield path, obj
            return
        for key, value in obj.items():
            yield from pod_templates(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from pod_templates(item, f"{path}[{i}]")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, Mapping)] if isinstance(value, list) else []


class _Check:
    """One pass over one pod spec; `found` collects the violations in the order of the fields."""

    def __init__(self, policy: PodSecurity) -> None:
        self.policy = policy
        self.level = policy.level
        self.found: list[Violation] = []

    def no(self, field: str, detail: str = "") -> None:
        self.found.append(Violation(field, f'not allowed under pod security "{self.level}"{detail}'))

    def must(self, field: str, what: str) -> None:
        self.found.append(Violation(field, f'must be {what} under pod security "{self.level}"'))

    def pod(self, spec: Mapping[str, Any], meta: Mapping[str, Any], at: str, meta_at: str) -> list[Violation]:
        restricted = self.level is PodSecurityLevel.RESTRICTED
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key) is True and not (key == "hostNetwork" and self.policy.allow_host_network):
                hint = " (the federator's operator may allow it: federator serve --allow-host-network)" \
                    if key == "hostNetwork" else ""
                self.no(f"{at}.{key}", hint)
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
            elif restricted and any(k not in RESTRICTED_VOLUMES for k in kinds):
                kind = next(k for k in kinds if k not in RESTRICTED_VOLUMES)
                self.no(f"{at}.volumes[{i}].{kind}", f" (volumes may be {', '.join(sorted(RESTRICTED_VOLUMES))})")
        for key, value in _mapping(meta.get("annotations")).items():
            if str(key).startswith(APPARMOR_ANNOTATION) and value != "runtime/default" \
                    and not str(value).startswith("localhost/"):
                self.no(f"{meta_at}.annotations[{key}]", f" ({str(value)[:80]!r}: only runtime/default or "
                                                         "localhost/<profile>)")
        containers = [(f"{at}.{kind}[{i}]", c) for kind in CONTAINER_LISTS for i, c in _items(spec.get(kind))]
        for where, container in containers:
            self.container(container, where, host_network=spec.get("hostNetwork") is True)
        if restricted:
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
                self.no(f"{sc}.capabilities.add[{j}]",
                        f" ({str(raw)[:40]!r}; the federator's operator may allow it: federator serve "
                        "--allow-capability NAME)")
        for j, port in _items(container.get("ports")):
            host_port = port.get("hostPort")
            if host_port not in (None, 0) and not (host_network and self.policy.allow_host_network):
                self.no(f"{at}.ports[{j}].hostPort")
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
                       at: str) -> None:
        """What restricted asks every container to set (or the pod, for those a pod may set for all)."""
        pod_non_root = context.get("runAsNonRoot")
        pod_seccomp = _mapping(context.get("seccompProfile")).get("type")
        if pod_non_root is False:
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


__all__ = ["BASELINE_CAPABILITIES", "PodSecurity", "PodSecurityLevel", "Violation", "capability_name",
           "check_object", "check_template", "pod_templates"]
