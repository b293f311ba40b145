"""A member's own pod security level (security/podsecurity_member.py): how its agent reports it, what the namespace's
Pod Security Admission label must say for it, and what a job's templates need of it."""

from __future__ import annotations

import pytest

from federator.security.limits import Limits, check_hello
from federator.security.podsecurity import AGENT_FLAGS, PodSecurity, PodSecurityLevel
from federator.security.podsecurity_member import (
    admission_level,
    member_refusal,
    needed_by,
    policy_labels,
    policy_of_labels,
)

BASELINE = PodSecurity()
RESTRICTED = PodSecurity(level=PodSecurityLevel.RESTRICTED)
IPC_LOCK = PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK", "NET_RAW"}), allow_host_network=True)


@pytest.mark.parametrize("policy", [BASELINE, RESTRICTED, IPC_LOCK, PodSecurity(level=PodSecurityLevel.PRIVILEGED)],
                         ids=["baseline", "restricted", "allowances", "privileged"])
def test_the_labels_an_agent_reports_read_back_as_its_policy(policy: PodSecurity) -> None:
    assert policy_of_labels(policy_labels(policy)) == policy


def test_allowances_are_labels_a_person_and_kubernetes_can_read() -> None:
    assert policy_labels(IPC_LOCK) == {"federator.io/pod-security": "baseline",
                                       "federator.io/pod-security-capabilities": "IPC_LOCK.NET_RAW",
                                       "federator.io/pod-security-host-network": "true"}


def test_a_cluster_that_reports_no_level_has_none() -> None:
    assert policy_of_labels({"federator.io/provider": "acme"}) is None


@pytest.mark.parametrize(("labels", "said"), [
    ({"federator.io/pod-security": "strict"},
     "hello.labels[federator.io/pod-security]: must be one of privileged, baseline, restricted, got 'strict'"),
    ({"federator.io/pod-security": "baseline", "federator.io/pod-security-capabilities": "ipc_lock"},
     "hello.labels[federator.io/pod-security-capabilities]: 'ipc_lock' is not a capability name such as IPC_LOCK "
     "(upper case, no CAP_ prefix)"),
    ({"federator.io/pod-security": "baseline", "federator.io/pod-security-host-network": "yes"},
     "hello.labels[federator.io/pod-security-host-network]: must be true or false, got 'yes'"),
    ({"federator.io/pod-security-host-network": "true"},
     "hello.labels[federator.io/pod-security-host-network]: given without federator.io/pod-security"),
], ids=["level", "capability", "host-network", "allowance-without-level"])
def test_the_federator_refuses_a_hello_whose_level_labels_it_cannot_read(labels: dict[str, str], said: str) -> None:
    assert check_hello("east-1", "east", labels, limits=Limits()) == said


@pytest.mark.parametrize(("policy", "label"), [
    (BASELINE, PodSecurityLevel.BASELINE),
    (RESTRICTED, PodSecurityLevel.RESTRICTED),
    (PodSecurity(allowed_capabilities=frozenset({"NET_BIND_SERVICE"})), PodSecurityLevel.BASELINE),
    (PodSecurity(level=PodSecurityLevel.RESTRICTED, allowed_capabilities=frozenset({"CHOWN"})),
     PodSecurityLevel.BASELINE),
    (PodSecurity(allowed_capabilities=frozenset({"IPC_LOCK"})), PodSecurityLevel.PRIVILEGED),
    (PodSecurity(allow_host_network=True), PodSecurityLevel.PRIVILEGED),
], ids=["baseline", "restricted", "baseline-cap-baseline-has", "restricted-cap-baseline-has",
        "ipc-lock", "host-network"])
def test_the_namespace_label_is_the_strictest_admission_level_that_admits_what_the_agent_does(
        policy: PodSecurity, label: PodSecurityLevel) -> None:
    assert admission_level(policy) is label


def test_a_refusal_names_the_field_and_the_agent_flags_that_would_admit_it() -> None:
    template = {"spec": {"containers": [{"name": "m", "securityContext": {"capabilities": {"add": ["IPC_LOCK"]}}}],
                         "hostNetwork": True}}
    need = needed_by(template, None, allowed_by=AGENT_FLAGS)
    said = member_refusal("member-a", BASELINE, need.refused(BASELINE), need)
    assert said == (
        'member-a refuses by its pod security level baseline: spec.template.spec.hostNetwork: not allowed under pod '
        "security \"baseline\" (this member's operator may allow it: federator agent --allow-host-network); "
        "spec.template.spec.containers[0].securityContext.capabilities.add[0]: not allowed under pod security "
        "\"baseline\" ('IPC_LOCK'; this member's operator may allow it: federator agent --allow-capability "
        "IPC_LOCK); its operator would admit it with federator agent --allow-capability IPC_LOCK "
        "--allow-host-network")


def test_what_no_allowance_admits_asks_for_a_lower_level() -> None:
    need = needed_by({"spec": {"containers": [{"name": "m", "securityContext": {"privileged": True}}]}}, None)
    assert need.admitting(RESTRICTED) == PodSecurity(level=PodSecurityLevel.PRIVILEGED)
    plain = needed_by({"spec": {"containers": [{"name": "m"}]}}, None)
    assert plain.refused(BASELINE) == ()
    assert plain.admitting(RESTRICTED) == BASELINE
    assert member_refusal("m", RESTRICTED, plain.refused(RESTRICTED), plain).endswith(
        "its operator would admit it with federator agent --pod-security baseline")


def test_a_host_port_is_allowed_with_the_host_network_only_on_a_pod_that_uses_it() -> None:
    allowed = PodSecurity(allow_host_network=True)
    port = {"name": "m", "ports": [{"containerPort": 80, "hostPort": 80}]}
    assert needed_by({"spec": {"containers": [port], "hostNetwork": True}}, None).refused(allowed) == ()
    assert [v.field for v in needed_by({"spec": {"containers": [port]}}, None).refused(allowed)] == [
        "spec.template.spec.containers[0].ports[0].hostPort"]
