{{/* Names, labels and shared fragments of the federator-agent chart. */}}

{{- define "agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: federator
app.kubernetes.io/managed-by: {{ .Release.Service }}
federator.io/cluster: {{ .Values.cluster.name | quote }}
{{- end }}

{{/* Cluster-scoped objects (ClusterRole, ClusterRoleBinding): release names are unique per namespace
     only, so the name carries the namespace too; two releases in one cluster never share one. */}}
{{- define "agent.clusterScopedName" -}}
{{- printf "%s-%s" .Release.Namespace (include "agent.fullname" .) | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "agent.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Empty (a release from chart 0.1 upgraded with --reuse-values) means the new default. */}}
{{- define "agent.workloadNamespace" -}}
{{- default "federator-workloads" .Values.workloadNamespace }}
{{- end }}

{{/*
The Pod Security Admission level of the workloads namespace: the agent's level, unless an allowance
goes beyond what Kubernetes lets that level add (then only privileged admits those pods, and the
agent's own check holds the rest). The same rule as security/podsecurity.py admission_level; a test
keeps them equal. podSecurity is newer than some releases (helm upgrade --reuse-values): its defaults.
*/}}
{{- define "agent.admissionLevel" -}}
{{- $level := dig "podSecurity" "level" "baseline" .Values.AsMap }}
{{- $baseline := list "AUDIT_WRITE" "CHOWN" "DAC_OVERRIDE" "FOWNER" "FSETID" "KILL" "MKNOD" "NET_BIND_SERVICE" "SETFCAP" "SETGID" "SETPCAP" "SETUID" "SYS_CHROOT" }}
{{- $beyondBaseline := dig "podSecurity" "allowHostNetwork" false .Values.AsMap }}
{{- $beyondRestricted := $beyondBaseline }}
{{- range (dig "podSecurity" "allowCapabilities" list .Values.AsMap) }}
{{- $cap := trimPrefix "CAP_" . }}
{{- if not (has $cap $baseline) }}{{ $beyondBaseline = true }}{{ end }}
{{- if ne $cap "NET_BIND_SERVICE" }}{{ $beyondRestricted = true }}{{ end }}
{{- end }}
{{- if or (eq $level "privileged") $beyondBaseline }}privileged
{{- else if and (eq $level "restricted") (not $beyondRestricted) }}restricted
{{- else }}baseline
{{- end }}
{{- end }}

{{- define "agent.tlsSecretName" -}}
{{- if .Values.tls.certManager.enabled }}
{{- printf "%s-tls" (include "agent.fullname" .) }}
{{- else }}
{{- .Values.tls.secretName }}
{{- end }}
{{- end }}

{{/* Required values and checks the schema cannot express; each failure names the value to set. */}}
{{- define "agent.validate" -}}
{{- $_ := required "federator.address: set the federator's gRPC address as host:port, e.g. --set federator.address=federator.example.net:7070" .Values.federator.address }}
{{- $_ := required "cluster.name: set this member cluster's name, e.g. --set cluster.name=west-1" .Values.cluster.name }}
{{- if and (not .Values.cluster.region) (or (not .Values.tls.enabled) .Values.tls.certManager.enabled) }}
{{- fail "cluster.region: set this member cluster's region, e.g. --set cluster.region=west (it may be left empty only when the certificate in tls.secretName binds it: federator certs issue --cluster NAME --region R)" }}
{{- end }}
{{- if eq (include "agent.workloadNamespace" .) .Release.Namespace }}
{{- fail (printf "workloadNamespace: %s is the release namespace; placements are other organisations' workloads and must not run beside the agent's certificate and ServiceAccount. Choose another namespace (default federator-workloads), or install the agent in another namespace" .Release.Namespace) }}
{{- end }}
{{- if and (eq .Values.backend "sim") (not .Values.sim.fleet) }}
{{- fail "sim.fleet: backend=sim needs a fleet file's content with a cluster named cluster.name" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.certManager.enabled) (not .Values.tls.secretName) }}
{{- fail "tls.secretName: name a Secret with ca.crt, tls.crt and tls.key, or set tls.certManager.enabled=true, or tls.enabled=false" }}
{{- end }}
{{- if and .Values.tls.enabled .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) }}
{{- fail "tls.certManager.issuerRef.name: name the cert-manager Issuer or ClusterIssuer of the federation's CA" }}
{{- end }}
{{- end }}

{{/* What the agent does to its placements' objects, in the namespaces where they run: the rules of a Role in
     workloadNamespace, or with namespacePerQueue of a ClusterRole (the tenant namespaces are made at run time). */}}
{{- define "agent.workloadRules" -}}
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, get, list, watch, delete, patch]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [create, get, list, watch, delete, patch]
# The headless Service of a multi-replica training placement (its pods' DNS names)
- apiGroups: [""]
  resources: [services]
  verbs: [create, get, delete]
# Workload kinds users bring in spec.workload, where the member has their controllers. Every kind: patch, to put
# back what was changed on the member behind the agent's back (backends/kube/drift.py)
- apiGroups: [jobset.x-k8s.io]
  resources: [jobsets]
  verbs: [create, get, list, watch, delete, patch]
- apiGroups: [leaderworkerset.x-k8s.io]
  resources: [leaderworkersets]
  verbs: [create, get, list, watch, delete, patch]
- apiGroups: [trainer.kubeflow.org]
  resources: [trainjobs]
  verbs: [create, get, list, watch, delete, patch]
- apiGroups: [kubeflow.org]
  resources: [pytorchjobs]
  verbs: [create, get, list, watch, delete, patch]
- apiGroups: [ray.io]
  resources: [rayjobs]
  verbs: [create, get, list, watch, delete, patch]
# A placement on a DRA pool: its pods' ResourceClaimTemplate, then owned by the workload (patch).
- apiGroups: [resource.k8s.io]
  resources: [resourceclaimtemplates]
  verbs: [create, patch, delete]
# Kueue mode (gangAdmission.kueueQueue): the LocalQueue, and Kueue's Workloads for their admission state.
- apiGroups: [kueue.x-k8s.io]
  resources: [localqueues, workloads]
  verbs: [get, list, watch]
# Kubernetes Events on a workload the agent stops or deletes for a reason of its own (gang timeout, a broken
# gang, a disruption, a node lost, a cancel from the federator), so `kubectl describe` on the member says why;
# and the Job controller's FailedCreate Events read (list, watch), so a gang whose pods the member refuses to
# create (a ResourceQuota, a LimitRange, an admission webhook) is refused at once in the member's words.
- apiGroups: [""]
  resources: [events]
  verbs: [create, list, watch]
{{- /* serveLogs is newer than some releases (helm upgrade --reuse-values): on, as its default. */}}
{{- if (dig "serveLogs" true .Values.AsMap) }}
# `federator logs` (serveLogs): the tail of the output of the agent's own pods (their placement's label and its
# identity annotations), read for a user who may see the job and sent to the federator on the agent's stream.
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
{{- end }}
{{- end }}

{{/* namespacePerQueue is newer than some releases (helm upgrade --reuse-values): on, as its default. */}}
{{- define "agent.namespacePerQueue" -}}
{{- if (dig "namespacePerQueue" true .Values.AsMap) }}true{{ end }}
{{- end }}
