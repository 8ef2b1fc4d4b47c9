{{/* Names, truncated to the 63 characters Kubernetes allows for DNS labels. */}}
{{- define "ordersaga.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ordersaga.fullname" -}}
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

{{- define "ordersaga.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ordersaga.labels" -}}
helm.sh/chart: {{ include "ordersaga.chart" . }}
{{ include "ordersaga.selectorLabels" . }}
app.kubernetes.io/version: {{ include "ordersaga.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ordersaga
{{- end }}

{{- define "ordersaga.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ordersaga.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one process; call with (dict "root" $ "component" "api"). */}}
{{- define "ordersaga.componentLabels" -}}
{{ include "ordersaga.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ordersaga.componentSelectorLabels" -}}
{{ include "ordersaga.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "ordersaga.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ordersaga.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ordersaga.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "ordersaga.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "ordersaga.imageTag" .) }}
{{- end }}

{{- define "ordersaga.configMapName" -}}
{{- printf "%s-config" (include "ordersaga.fullname" .) }}
{{- end }}

{{- define "ordersaga.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "ordersaga.fullname" .)) }}
{{- end }}

{{/* Where the Temporal client certificate Secret is mounted. */}}
{{- define "ordersaga.temporalTlsDir" -}}
/etc/ordersaga/temporal-tls
{{- end }}

{{- define "ordersaga.temporalTlsEnabled" -}}
{{- if or .Values.temporal.tls.enabled .Values.temporal.tls.existingSecret .Values.temporal.apiKey.enabled }}true{{ else }}false{{ end }}
{{- end }}

{{- define "ordersaga.jwksUrl" -}}
{{- .Values.auth.jwksUrl | default (printf "http://%s-auth.%s.svc:%d/.well-known/jwks.json" (include "ordersaga.fullname" .) .Release.Namespace (int .Values.auth.service.port)) }}
{{- end }}

{{/*
The settings every process shares, as a flat map of environment variables.
The ConfigMap holds them for the Deployments; the hook Jobs get the same map
inline, because hooks run before the release's ConfigMap exists.
*/}}
{{- define "ordersaga.configData" -}}
{{- $base := include "ordersaga.baseConfig" . }}
{{- $managed := $base | fromYaml }}
{{- $base }}
{{- range $key, $value := .Values.extraConfig }}
{{- if hasKey $managed $key }}
{{- fail (printf "extraConfig.%s is set by the chart; use its own value instead" $key) }}
{{- end }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{- define "ordersaga.baseConfig" -}}
ORDERSAGA_MODE: production
ORDERSAGA_LOG_LEVEL: {{ .Values.logLevel | quote }}
ORDERSAGA_DATA_DIR: /tmp/ordersaga
ORDERSAGA_TASK_QUEUE: {{ .Values.taskQueue | quote }}
TEMPORAL_ADDRESS: {{ required "temporal.address is required (host:port of the Temporal frontend)" .Values.temporal.address | quote }}
TEMPORAL_NAMESPACE: {{ .Values.temporal.namespace | quote }}
TEMPORAL_TLS: {{ include "ordersaga.temporalTlsEnabled" . | quote }}
{{- with .Values.temporal.tls.existingSecret }}
TEMPORAL_TLS_CLIENT_CERT_PATH: {{ printf "%s/%s" (include "ordersaga.temporalTlsDir" $) $.Values.temporal.tls.certKey | quote }}
TEMPORAL_TLS_CLIENT_KEY_PATH: {{ printf "%s/%s" (include "ordersaga.temporalTlsDir" $) $.Values.temporal.tls.keyKey | quote }}
{{- with $.Values.temporal.tls.caKey }}
TEMPORAL_TLS_SERVER_CA_CERT_PATH: {{ printf "%s/%s" (include "ordersaga.temporalTlsDir" $) . | quote }}
{{- end }}
{{- end }}
ORDERSAGA_SERVE_AUTH: "false"
ORDERSAGA_JWKS_URL: {{ include "ordersaga.jwksUrl" . | quote }}
ORDERSAGA_ADMIN_EMAIL: {{ .Values.admin.email | quote }}
ORDERSAGA_SMTP_HOST: {{ .Values.smtp.host | quote }}
ORDERSAGA_SMTP_PORT: {{ .Values.smtp.port | quote }}
ORDERSAGA_MAIL_FROM: {{ .Values.smtp.from | quote }}
ORDERSAGA_API_PORT: {{ .Values.api.port | quote }}
ORDERSAGA_AUTH_PORT: {{ .Values.auth.port | quote }}
ORDERSAGA_WORKER_HEALTH_PORT: {{ .Values.worker.healthPort | quote }}
ORDERSAGA_WORKER_MAX_CONCURRENT_ACTIVITIES: {{ .Values.worker.maxConcurrentActivities | quote }}
ORDERSAGA_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: {{ .Values.worker.maxConcurrentWorkflowTasks | quote }}
{{- end }}

{{/*
One secret environment variable; call with
(dict "root" $ "name" "DATABASE_URL" "key" "databaseUrl" "optional" false).
*/}}
{{- define "ordersaga.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "ordersaga.secretName" .root }}
      key: {{ index .root.Values.secrets.keys .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}

{{/* The client certificate Secret, mounted read-only (when temporal.tls.existingSecret). */}}
{{- define "ordersaga.temporalTlsVolumeMount" -}}
- name: temporal-tls
  mountPath: {{ include "ordersaga.temporalTlsDir" . }}
  readOnly: true
{{- end }}

{{- define "ordersaga.temporalTlsVolume" -}}
- name: temporal-tls
  secret:
    secretName: {{ .Values.temporal.tls.existingSecret }}
    defaultMode: 0440
{{- end }}

{{/* A writable /tmp: the root filesystem is read-only. */}}
{{- define "ordersaga.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}

{{- define "ordersaga.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Pod-level settings shared by the Deployments and the hook Jobs. */}}
{{- define "ordersaga.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{- define "ordersaga.httpProbes" -}}
{{- $probes := .root.Values.probes -}}
startupProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  periodSeconds: {{ $probes.startup.periodSeconds }}
  timeoutSeconds: {{ $probes.startup.timeoutSeconds }}
  failureThreshold: {{ $probes.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  initialDelaySeconds: {{ $probes.liveness.initialDelaySeconds }}
  periodSeconds: {{ $probes.liveness.periodSeconds }}
  timeoutSeconds: {{ $probes.liveness.timeoutSeconds }}
  failureThreshold: {{ $probes.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ .port }}
  initialDelaySeconds: {{ $probes.readiness.initialDelaySeconds }}
  periodSeconds: {{ $probes.readiness.periodSeconds }}
  timeoutSeconds: {{ $probes.readiness.timeoutSeconds }}
  failureThreshold: {{ $probes.readiness.failureThreshold }}
{{- end }}
