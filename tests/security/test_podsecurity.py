"""The Pod Security Standards on a pod template (security/podsecurity.py): each baseline control refuses the
field it names, restricted asks for what it asks, and what an operator allows by name passes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from federator.security.podsecurity import (
    PodSecurity,
    PodSecurityLevel,
    capability_name,
    check_object,
    check_template,
)

BASELINE = PodSecurity()
RESTRICTED = PodSecurity(level=PodSecurityLevel.RESTRICTED)
PRIVILEGED = PodSecurity(level=PodSecurityLevel.PRIVILEGED)


def template(**pod: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "main", "image": "llm:1"}], **pod}}


def container_with(**fields: Any) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "main", "image": "llm:1", **fields}]}}


def secured(**context: Any) -> dict[str, Any]:
    return container_with(securityContext=context)


C0 = "spec.containers[0]"
SC = f"{C0}.securityContext"

BASELINE_REFUSALS = [
    ("host-network", template(hostNetwork=True), "spec.hostNetwork"),
    ("host-pid", template(hostPID=True), "spec.hostPID"),
    ("host-ipc", template(hostIPC=True), "spec.hostIPC"),
    ("privileged", secured(privileged=True), f"{SC}.privileged"),
    ("privileged-init-container",
     {"spec": {"containers": [{"name": "m"}],
               "initContainers": [{"name": "i", "securityContext": {"privileged": True}}]}},
     "spec.initContainers[0].securityContext.privileged"),
    ("sys-admin", secured(capabilities={"add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}), f"{SC}.capabilities.add[1]"),
    ("cap-prefixed-net-admin", secured(capabilities={"add": ["CAP_NET_ADMIN"]}), f"{SC}.capabilities.add[0]"),
    ("ipc-lock-not-allowed", secured(capabilities={"add": ["IPC_LOCK"]}), f"{SC}.capabilities.add[0]"),
    ("host-path", template(volumes=[{"name": "d", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/"}}]),
     "spec.volumes[1].hostPath"),
    ("host-port", container_with(ports=[{"containerPort": 80, "hostPort": 80}]), f"{C0}.ports[0].hostPort"),
    ("unsafe-sysctl", template(securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}),
     "spec.securityContext.sysctls[0].name"),
    ("proc-mount", secured(procMount="Unmasked"), f"{SC}.procMount"),
    ("selinux-type", secured(seLinuxOptions={"type": "spc_t"}), f"{SC}.seLinuxOptions.type"),
    ("selinux-user", template(securityContext={"seLinuxOptions": {"user": "root"}}),
     "spec.securityContext.seLinuxOptions.user"),
    ("seccomp-unconfined", template(securityContext={"seccompProfile": {"type": "Unconfined"}}),
     "spec.securityContext.seccompProfile.type"),
    ("seccomp-unconfined-container", secured(seccompProfile={"type": "Unconfined"}), f"{SC}.seccompProfile.type"),
    ("apparmor-unconfined", secured(appArmorProfile={"type": "Unconfined"}), f"{SC}.appArmorProfile.type"),
    ("apparmor-annotation",
     {"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/main": "unconfined"}},
      "spec": {"containers": [{"name": "main"}]}},
     "metadata.annotations[container.apparmor.security.beta.kubernetes.io/main]"),
    ("windows-host-process", secured(windowsOptions={"hostProcess": True}), f"{SC}.windowsOptions.hostProcess"),
    ("probe-host", container_with(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}),
     f"{C0}.livenessProbe.httpGet.host"),
    ("ephemeral-privileged",
     {"spec": {"containers": [{"name": "m"}], "ephemeralContainers": [{"name": "e", "securityContext":
                                                                       {"privileged": True}}]}},
     "spec.ephemeralContainers[0].securityContext.privileged"),
]


@pytest.mark.parametrize(("pod", "field"), [(p, f) for _, p, f in BASELINE_REFUSALS],
                         ids=[i for i, _, _ in BASELINE_REFUSALS])
def test_baseline_refuses_each_control_naming_its_field(pod: dict[str, Any], field: str) -> None:
    found = check_template(pod, policy=BASELINE)
    assert [v.field for v in found] == [field]
    assert found[0].problem.startswith('not allowed under pod security "baseline"')
    assert check_template(pod, policy=PRIVILEGED) == []  # privileged: no rule at all


BASELINE_ACCEPTS = [
    ("nothing-set", template()),
    ("default-capabilities", secured(capabilities={"add": ["CHOWN", "NET_BIND_SERVICE"], "drop": ["ALL"]})),
    ("privileged-false", secured(privileged=False, allowPrivilegeEscalation=True)),
    ("safe-sysctl", template(securityContext={"sysctls": [{"name": "net.ipv4.ip_local_port_range",
                                                            "value": "1024 65535"}]})),
    ("runtime-default-seccomp", template(securityContext={"seccompProfile": {"type": "RuntimeDefault"}})),
    ("localhost-apparmor", secured(appArmorProfile={"type": "Localhost", "localhostProfile": "p"})),
    ("container-t-selinux", secured(seLinuxOptions={"type": "container_t", "level": "s0:c1,c2"})),
    ("container-port-only", container_with(ports=[{"containerPort": 29500}])),
    ("host-port-zero", container_with(ports=[{"containerPort": 80, "hostPort": 0}])),
    ("proc-mount-default", secured(procMount="Default")),
    ("pvc-and-shm", template(volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "c"}},
                                      {"name": "shm", "emptyDir": {"medium": "Memory"}}])),
]


@pytest.mark.parametrize("pod", [p for _, p in BASELINE_ACCEPTS], ids=[i for i, _ in BASELINE_ACCEPTS])
def test_baseline_accepts_what_an_ordinary_training_pod_sets(pod: dict[str, Any]) -> None:
    assert check_template(pod, policy=BASELINE) == []


def test_every_problem_of_a_template_is_named_at_once() -> None:
    pod = template(hostNetwork=True, hostPID=True)
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}
    assert [v.field for v in check_template(pod, policy=BASELINE)] == [
        "spec.hostNetwork", "spec.hostPID", f"{SC}.privileged", f"{SC}.capabilities.add[0]"]


def test_an_operator_allows_a_capability_and_the_host_network_by_name() -> None:
    rdma = PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK"}), allow_host_network=True)
    pod = template(hostNetwork=True)
    pod["spec"]["containers"][0].update(securityContext={"capabilities": {"add": ["IPC_LOCK", "cap_ipc_lock"]}},
                                       ports=[{"containerPort": 29500, "hostPort": 29500}])
    assert check_template(pod, policy=rdma) == []
    assert [v.field for v in check_template(pod, policy=BASELINE)] == [
        "spec.hostNetwork", f"{SC}.capabilities.add[0]", f"{SC}.capabilities.add[1]", f"{C0}.ports[0].hostPort"]
    still = copy.deepcopy(pod)
    still["spec"]["hostPID"] = True  # allowing the network allows nothing else of the host
    assert [v.field for v in check_template(still, policy=rdma)] == ["spec.hostPID"]
    # a host port without the host network is still refused: the network allowance is what implies it
    alone = container_with(ports=[{"containerPort": 80, "hostPort": 80}])
    assert [v.field for v in check_template(alone, policy=rdma)] == [f"{C0}.ports[0].hostPort"]


def test_capability_names_are_read_as_the_runtimes_read_them() -> None:
    assert capability_name(" cap_ipc_lock ") == "IPC_LOCK"
    assert capability_name("SYS_NICE") == "SYS_NICE"
    with pytest.raises(ValueError, match="pod_security.allowed_capabilities: 'ipc lock'"):
        PodSecurity(allowed_capabilities=frozenset({"ipc lock"}))


HARDENED = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "seccompProfile": {"type": "RuntimeDefault"},
            "capabilities": {"drop": ["ALL"]}}


def test_restricted_accepts_a_hardened_pod_and_names_what_a_bare_one_lacks() -> None:
    assert check_template(secured(**HARDENED), policy=RESTRICTED) == []
    pod_level = {"spec": {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Localhost"}},
                          "containers": [{"name": "m", "securityContext": {"allowPrivilegeEscalation": False,
                                                                           "capabilities": {"drop": ["ALL"]}}}]}}
    assert check_template(pod_level, policy=RESTRICTED) == []  # what the pod sets holds for every container
    found = check_template(template(), policy=RESTRICTED)
    assert [v.field for v in found] == [f"{SC}.allowPrivilegeEscalation", f"{SC}.runAsNonRoot",
                                        f"{SC}.seccompProfile.type", f"{SC}.capabilities.drop"]
    assert found[0].problem == 'must be false under pod security "restricted"'
    assert check_template(template(), policy=BASELINE) == []


@pytest.mark.parametrize(("change", "field"), [
    ({"runAsUser": 0}, f"{SC}.runAsUser"),
    ({"capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}}, f"{SC}.capabilities.add[0]"),
    ({"runAsNonRoot": False}, f"{SC}.runAsNonRoot"),
], ids=["root-user", "a-baseline-capability", "run-as-root"])
def test_restricted_refuses_what_baseline_lets_through(change: dict[str, Any], field: str) -> None:
    pod = secured(**{**HARDENED, **change})
    assert check_template(pod, policy=BASELINE) == []
    assert [v.field for v in check_template(pod, policy=RESTRICTED)] == [field]


def test_restricted_allows_only_volumes_a_namespace_governs() -> None:
    pod = secured(**HARDENED)
    pod["spec"]["volumes"] = [{"name": "c", "configMap": {"name": "x"}}, {"name": "n", "nfs": {"server": "s"}}]
    assert [v.field for v in check_template(pod, policy=RESTRICTED)] == ["spec.volumes[1].nfs"]
    assert check_template(pod, policy=BASELINE) == []


def test_the_pod_templates_inside_a_workload_are_found_wherever_its_kind_keeps_them() -> None:
    jobset = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "spec": {"replicatedJobs": [
        {"name": "launcher", "template": {"spec": {"template": {"spec": {"containers": [{"name": "l"}]}}}}},
        {"name": "workers", "template": {"spec": {"template": {
            "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/w": "unconfined"}},
            "spec": {"hostIPC": True, "containers": [{"name": "w", "securityContext": {"privileged": True}}]}}}}}]}}
    fields = [v.field for v in check_object(jobset, policy=BASELINE)]
    at = "spec.replicatedJobs[1].template.spec.template"
    assert fields == [f"{at}.spec.hostIPC",
                      f"{at}.metadata.annotations[container.apparmor.security.beta.kubernetes.io/w]",
                      f"{at}.spec.containers[0].securityContext.privileged"]
