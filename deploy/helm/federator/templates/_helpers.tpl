{{/* Names, labels and shared fragments of the federator chart. */}}

{{- define "federator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "federator.fullname" -}}
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

{{- define "federator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "federator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "federator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "federator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: federator
app.kubernetes.io/part-of: federator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The label that tells the metrics Service from the gRPC one (the ServiceMonitor selects it). */}}
{{- define "federator.metricsServiceLabels" -}}
federator.io/service: metrics
{{- end }}

{{/* Cluster-scoped objects (ClusterRole, ClusterRoleBinding): release names are unique per namespace
     only, so the name carries the namespace too; two releases in one cluster never share one. */}}
{{- define "federator.clusterScopedName" -}}
{{- printf "%s-%s" .Release.Namespace (include "federator.fullname" .) | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "federator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "federator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "federator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "federator.tlsSecretName" -}}
{{- if .Values.tls.certManager.enabled }}
{{- printf "%s-tls" (include "federator.fullname" .) }}
{{- else }}
{{- .Values.tls.secretName }}
{{- end }}
{{- end }}

{{/* The Secret holding the seal key file: sealKey.existingSecret, or the one templates/seal-key.yaml makes. */}}
{{- define "federator.sealKeySecretName" -}}
{{- default (printf "%s-seal-key" (include "federator.fullname" .)) (dig "sealKey" "existingSecret" "" .Values.AsMap) }}
{{- end }}

{{/* "true" when the replicas elect a leader through a Lease (mode=kubernetes and leaderElection.enabled). */}}
{{- define "federator.leaderElected" -}}
{{- if and (eq .Values.mode "kubernetes") .Values.leaderElection.enabled }}true{{ end }}
{{- end }}

{{- define "federator.leaseName" -}}
{{- default (printf "%s-leader" (include "federator.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/* Checks the schema cannot express; each failure names the value to change. */}}
{{- define "federator.validate" -}}
{{- $ha := gt (int .Values.replicaCount) 1 }}
{{- if and $ha (eq .Values.mode "standalone") }}
{{- fail "replicaCount: mode=standalone keeps jobs in one SQLite file and runs one replica; set replicaCount=1 or mode=kubernetes" }}
{{- end }}
{{- if and $ha (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount: more than one replica needs leaderElection.enabled=true (only one replica may schedule)" }}
{{- end }}
{{- if and $ha .Values.persistence.enabled }}
{{- fail "persistence.enabled: one SQLite file on one volume serves one replica; set replicaCount=1 or persistence.enabled=false" }}
{{- end }}
{{- /* Not in values.schema.json: its refusal would read "at '/persistence/enabled': value must be true" and say
       neither why nor the way out; this one names both values and what an emptyDir store costs. */}}
{{- if and (eq .Values.mode "standalone") (not .Values.persistence.enabled) (not .Values.persistence.ephemeralOk) }}
{{- fail "persistence.enabled: mode=standalone keeps every job in one SQLite file, and without a volume it is an emptyDir that every upgrade, restart elsewhere or node drain deletes with all its jobs; set persistence.enabled=true (or persistence.existingClaim with it), or persistence.ephemeralOk=true for a demo whose jobs may be lost" }}
{{- end }}
{{- if eq (int .Values.service.grpcPort) (int .Values.service.metricsPort) }}
{{- fail (printf "service.metricsPort: %d is service.grpcPort too; the federator cannot listen twice on one port" (int .Values.service.metricsPort)) }}
{{- end }}
{{- if include "federator.leaderElected" . }}
{{- with .Values.leaderElection }}
{{- if not (and (lt (float64 .retryPeriod) (float64 .renewDeadline)) (lt (float64 .renewDeadline) (float64 .leaseDuration))) }}
{{- fail (printf "leaderElection: retryPeriod < renewDeadline < leaseDuration is needed (the federator refuses to start), got %v / %v / %v" .retryPeriod .renewDeadline .leaseDuration) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.certManager.enabled) (not .Values.tls.secretName) }}
{{- fail "tls.secretName: name a Secret with ca.crt, tls.crt and tls.key, or set tls.certManager.enabled=true, or tls.enabled=false" }}
{{- end }}
{{- if and .Values.tls.enabled .Values.tls.certManager.enabled (not .Values.tls.certManager.issuerRef.name) }}
{{- fail "tls.certManager.issuerRef.name: name the cert-manager Issuer or ClusterIssuer of the federation's CA" }}
{{- end }}
{{- end }}
