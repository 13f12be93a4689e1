{{- define "pond.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pond.fullname" -}}
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

{{- define "pond.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "pond.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "coordinator") */}}
{{- define "pond.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pond.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pond.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "pond.coordinatorName" -}}
{{ include "pond.fullname" . | trunc 51 | trimSuffix "-" }}-coordinator
{{- end }}

{{- define "pond.ducklingName" -}}
{{ include "pond.fullname" . | trunc 53 | trimSuffix "-" }}-duckling
{{- end }}

{{- define "pond.storageUrl" -}}
{{- required "storage.url is required: s3://bucket/prefix, shared by every pod" .Values.storage.url }}
{{- end }}

{{- define "pond.terminationGracePeriodSeconds" -}}
{{ add .Values.preStopSleepSeconds .Values.drainTimeoutSeconds .Values.terminationGraceExtraSeconds }}
{{- end }}

{{/* Environment both coordinators and ducklings get: storage credentials, HOME. */}}
{{- define "pond.commonEnv" -}}
- name: HOME
  value: /tmp
- name: POND_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- with .Values.storage.s3.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}
{{- with .Values.storage.s3.region }}
- name: AWS_DEFAULT_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.storage.s3.endpoint }}
- name: AWS_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if .Values.storage.s3.allowHttp }}
- name: AWS_ALLOW_HTTP
  value: "true"
{{- end }}
{{- end }}

{{/* Flags both coordinators and ducklings take: the duckling shape and limits. */}}
{{- define "pond.commonArgs" -}}
- --drain-timeout={{ .Values.drainTimeoutSeconds }}s
- --duckling-memory={{ .Values.duckling.memoryGiB }}GiB
- --duckling-threads={{ .Values.duckling.threads }}
{{- with .Values.limits.queryTimeout }}
- --query-timeout={{ . }}
{{- end }}
{{- with .Values.limits.maxResultBytes }}
- --max-result-bytes={{ . }}
{{- end }}
{{- with .Values.limits.maxConcurrentQueries }}
- --max-concurrent-queries={{ . }}
{{- end }}
{{- with .Values.limits.sessionIdleTimeout }}
- --session-idle-timeout={{ . }}
{{- end }}
{{- with .Values.limits.ducklingIdleTimeout }}
- --duckling-idle-timeout={{ . }}
{{- end }}
{{- end }}

{{- define "pond.preStop" -}}
{{- if gt (int .Values.preStopSleepSeconds) 0 }}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ .Values.preStopSleepSeconds }}"]
{{- end }}
{{- end }}
