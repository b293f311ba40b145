"""The field names of a Kubernetes pod template, pod spec, container and object metadata, as of Kubernetes 1.36.

Its own module because it is data that follows Kubernetes, not federator: the
lists are those of the v1.36 API (PodTemplateSpec, ObjectMeta, PodSpec,
Container, EphemeralContainer; the test bed runs v1.36), and they are what the
submit check of a job's pod template (`podtemplates.key_findings`) compares a
template's keys with. A new Kubernetes release adds fields, so a key not listed
here is not refused for that alone (a submit warning says the member's API
server may drop or refuse it); only a key a letter or two from a listed one, or
one differing only in case, is refused as the typo it almost surely is: a
`containerz` once ran the placeholder busybox container on 32 H100 and reported
Succeeded (outside QA, F5). Update the lists with each Kubernetes minor version
the test bed moves to (tests/test_podfields.py compares them with the
kubernetes client's models, which may be a release ahead: checked against the
test bed's v1.36.3 kube-apiserver, the client 37's `evictionResponders` of a
pod spec is not in 1.36, so it is not here and is warned of).
"""

from __future__ import annotations

KUBERNETES_VERSION = "1.36"
"""The Kubernetes minor version whose API these lists follow."""

TEMPLATE_FIELDS = frozenset({"metadata", "spec"})
"""PodTemplateSpec: the same in every Kubernetes version, so any other key is refused."""

OBJECT_META_FIELDS = frozenset({
    "annotations", "creationTimestamp", "deletionGracePeriodSeconds", "deletionTimestamp", "finalizers",
    "generateName", "generation", "labels", "managedFields", "name", "namespace", "ownerReferences",
    "resourceVersion", "selfLink", "uid"})
"""ObjectMeta (a template's `metadata`)."""

POD_SPEC_FIELDS = frozenset({
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "containers", "dnsConfig", "dnsPolicy",
    "enableServiceLinks", "ephemeralContainers", "hostAliases", "hostIPC", "hostNetwork",
    "hostPID", "hostUsers", "hostname", "hostnameOverride", "imagePullSecrets", "initContainers", "nodeName",
    "nodeSelector", "os", "overhead", "preemptionPolicy", "priority", "priorityClassName", "readinessGates",
    "resourceClaims", "resources", "restartPolicy", "runtimeClassName", "schedulerName", "schedulingGates",
    "schedulingGroup", "securityContext", "serviceAccount", "serviceAccountName", "setHostnameAsFQDN",
    "shareProcessNamespace", "subdomain", "terminationGracePeriodSeconds", "tolerations",
    "topologySpreadConstraints", "volumes"})
"""PodSpec (a template's `spec`)."""

CONTAINER_FIELDS = frozenset({
    "args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle", "livenessProbe", "name", "ports",
    "readinessProbe", "resizePolicy", "resources", "restartPolicy", "restartPolicyRules", "securityContext",
    "startupProbe", "stdin", "stdinOnce", "terminationMessagePath", "terminationMessagePolicy", "tty",
    "volumeDevices", "volumeMounts", "workingDir"})
"""Container (an item of `containers` and `initContainers`)."""

EPHEMERAL_CONTAINER_FIELDS = CONTAINER_FIELDS | {"targetContainerName"}
"""EphemeralContainer (an item of `ephemeralContainers`)."""

__all__ = ["CONTAINER_FIELDS", "EPHEMERAL_CONTAINER_FIELDS", "KUBERNETES_VERSION", "OBJECT_META_FIELDS",
           "POD_SPEC_FIELDS", "TEMPLATE_FIELDS"]
