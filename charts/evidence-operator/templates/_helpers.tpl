{{/* Chart name. */}}
{{- define "evidence-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name: the release name when it already contains the chart name. */}}
{{- define "evidence-operator.fullname" -}}
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

{{/* Common labels. */}}
{{- define "evidence-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "evidence-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: evidence-operator
{{- end }}

{{/* Selector labels. */}}
{{- define "evidence-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "evidence-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount's name. */}}
{{- define "evidence-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "evidence-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: digest wins over tag; tag defaults to appVersion. */}}
{{- define "evidence-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Namespaces where credentials Secrets may be read. */}}
{{- define "evidence-operator.credentialsNamespaces" -}}
{{- if .Values.credentialsNamespaces }}
{{- join "," .Values.credentialsNamespaces }}
{{- else }}
{{- join "," .Values.watchNamespaces }}
{{- end }}
{{- end }}

{{/*
The operator's rules on the evidence.bwv.io resources and events, and nothing more:
  - watch, list and get the three resources (the controllers' watches; get of a
    bucket's RetentionPolicy and a hold's EvidenceBucket);
  - patch the status of evidencebuckets, retentionpolicies, legalholds, cliprestores
    and accessrequests (server-side apply);
  - patch legalholds (the finalizer evidence.bwv.io/release-clips, JSON patch);
  - create and patch events.k8s.io Events (the recorder aggregates repeats by patch).
*/}}
{{- define "evidence-operator.resourceRules" -}}
- apiGroups: ["evidence.bwv.io"]
  resources: ["evidencebuckets", "retentionpolicies", "legalholds", "cliprestores", "accessrequests"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["evidence.bwv.io"]
  resources: ["legalholds", "accessrequests"]
  verbs: ["patch"]
- apiGroups: ["evidence.bwv.io"]
  resources: ["evidencebuckets/status", "retentionpolicies/status", "legalholds/status", "cliprestores/status", "accessrequests/status"]
  verbs: ["patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
