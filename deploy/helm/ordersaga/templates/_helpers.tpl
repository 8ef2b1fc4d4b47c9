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
app.kubernetes.io/version: {{ include "ordersaga.versionLabel" . | quote }}
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
{{- .Values.image.tag }}
{{- end }}

{{/*
repository:tag, or repository[:tag]@digest. An immutable reference is
required: the schema refuses `latest` outside allowLatest, and an empty tag
needs a digest.
*/}}
{{- define "ordersaga.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- if $image.tag }}
{{- printf "%s:%s@%s" $image.repository $image.tag $image.digest }}
{{- else }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- end }}
{{- else }}
{{- printf "%s:%s" $image.repository (required "image.tag (the commit SHA image.yml pushed) or image.digest is required" $image.tag) }}
{{- end }}
{{- end }}

{{- define "ordersaga.versionLabel" -}}
{{- if .Values.image.tag }}
{{- .Values.image.tag | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- .Values.image.digest | trimPrefix "sha256:" | trunc 12 }}
{{- end }}
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
{{- include "ordersaga.checks" . }}
ORDERSAGA_MODE: production
ORDERSAGA_LOG_LEVEL: {{ .Values.logLevel | quote }}
ORDERSAGA_DATA_DIR: /tmp/ordersaga
ORDERSAGA_TASK_QUEUE: {{ .Values.taskQueue | quote }}
TEMPORAL_ADDRESS: {{ required "temporal.address is required (host:port of the Temporal frontend)" .Values.temporal.address | quote }}
TEMPORAL_NAMESPACE: {{ .Values.temporal.namespace | quote }}
TEMPORAL_TLS: {{ include "ordersaga.temporalTlsEnabled" . | quote }}
{{- /* Only the files the Secret holds: a CA-only Secret sets no client paths. */}}
{{- with .Values.temporal.tls }}
{{- if .existingSecret }}
{{- if .certKey }}
TEMPORAL_TLS_CLIENT_CERT_PATH: {{ printf "%s/%s" (include "ordersaga.temporalTlsDir" $) .certKey | quote }}
TEMPORAL_TLS_CLIENT_KEY_PATH: {{ printf "%s/%s" (include "ordersaga.temporalTlsDir" $) .keyKey | quote }}
{{- end }}
{{- if .caKey }}
TEMPORAL_TLS_SERVER_CA_CERT_PATH: {{ printf "%s/%s" (include "ordersaga.temporalTlsDir" $) .caKey | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.temporal.uiUrl }}
ORDERSAGA_TEMPORAL_UI_URL: {{ . | quote }}
{{- end }}
ORDERSAGA_STUCK_AFTER_SECONDS: {{ .Values.stuckAfterSeconds | quote }}
ORDERSAGA_SERVE_AUTH: "false"
ORDERSAGA_JWKS_URL: {{ include "ordersaga.jwksUrl" . | quote }}
ORDERSAGA_ADMIN_EMAIL: {{ required "admin.email is required (the first administrator)" .Values.admin.email | quote }}
ORDERSAGA_SMTP_HOST: {{ .Values.smtp.host | quote }}
ORDERSAGA_SMTP_PORT: {{ .Values.smtp.port | quote }}
ORDERSAGA_MAIL_FROM: {{ required "smtp.from is required (the sender of order mail)" .Values.smtp.from | quote }}
ORDERSAGA_SMTP_SECURITY: {{ .Values.smtp.security | quote }}
ORDERSAGA_SMTP_TIMEOUT_SECONDS: {{ .Values.smtp.timeoutSeconds | quote }}
{{- with .Values.smtp.localHosts }}
ORDERSAGA_SMTP_LOCAL_HOSTS: {{ toJson . | quote }}
{{- end }}
{{- with .Values.publicUrl }}
ORDERSAGA_PUBLIC_URL: {{ . | quote }}
{{- end }}
ORDERSAGA_API_PORT: {{ .Values.api.port | quote }}
ORDERSAGA_API_METRICS_PORT: {{ .Values.api.metricsPort | quote }}
ORDERSAGA_AUTH_PORT: {{ .Values.auth.port | quote }}
ORDERSAGA_AUTH_METRICS_PORT: {{ .Values.auth.metricsPort | quote }}
ORDERSAGA_DB_PREPARED_STATEMENTS: {{ .Values.database.preparedStatements | quote }}
ORDERSAGA_WORKER_HEALTH_PORT: {{ .Values.worker.healthPort | quote }}
ORDERSAGA_WORKER_GRACEFUL_SHUTDOWN_SECONDS: {{ .Values.worker.gracefulShutdownSeconds | quote }}
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

{{/* The worker pod's grace period: the graceful shutdown plus the margin. */}}
{{- define "ordersaga.workerTerminationGracePeriod" -}}
{{- add (int .Values.worker.gracefulShutdownSeconds) (int .Values.worker.shutdownMarginSeconds) }}
{{- end }}

{{/* The most replicas a Deployment may run, a rollout's surge pod included. */}}
{{- define "ordersaga.maxPods" -}}
{{- $v := index .root.Values .component }}
{{- $most := int $v.replicas }}
{{- if and (eq .component "worker") (or $v.autoscaling.enabled $v.autoscaling.keda.enabled) }}
{{- $most = int $v.autoscaling.maxReplicas }}
{{- end }}
{{- add $most 1 }}
{{- end }}

{{/*
Checks no schema can make, because they compare values: fail the render
rather than deploy a release that drops work or runs out of connections.
*/}}
{{- define "ordersaga.checks" -}}
{{- $deadline := get .Values.extraConfig "ORDERSAGA_PAYMENT_DEADLINE_SECONDS" | default 60 | float64 }}
{{- if lt (float64 .Values.worker.gracefulShutdownSeconds) $deadline }}
{{- fail (printf "worker.gracefulShutdownSeconds (%v) must be at least the payment deadline (%v s): a stopping worker would cut charges in flight" .Values.worker.gracefulShutdownSeconds $deadline) }}
{{- end }}
{{- $total := 0 }}
{{- range $component := list "api" "auth" "worker" }}
{{- $pool := index $.Values.database.pool $component }}
{{- $pods := int (include "ordersaga.maxPods" (dict "root" $ "component" $component)) }}
{{- $total = add $total (mul $pods (add (int $pool.size) (int $pool.maxOverflow))) }}
{{- if $.Values.migrations.initContainer.enabled }}
{{- /* Each starting pod's `ordersaga migrate` holds one connection. */}}
{{- $total = add $total $pods }}
{{- end }}
{{- end }}
{{- /* The migrate hook: migrate (one) and bootstrap-admin (two). */}}
{{- $total = add $total 3 }}
{{- if gt (int $total) (int .Values.database.maxConnections) }}
{{- fail (printf "the pools may open %d PostgreSQL connections, above database.maxConnections (%d): shrink database.pool or the replicas, or raise the budget (docs/DEPLOY.md)" (int $total) (int .Values.database.maxConnections)) }}
{{- end }}
{{- end }}

{{/* A pod's environment for its own connection pool (per process type). */}}
{{- define "ordersaga.poolEnv" -}}
{{- $pool := index .root.Values.database.pool .component -}}
- name: ORDERSAGA_DB_POOL_SIZE
  value: {{ $pool.size | quote }}
- name: ORDERSAGA_DB_MAX_OVERFLOW
  value: {{ $pool.maxOverflow | quote }}
{{- end }}

{{/*
Pod annotations that roll the pods when what they read at start changes:
the settings (ConfigMap), the chart-made Secret, and for Secrets the chart
does not see (secrets.existingSecret, the Temporal TLS Secret) the
secrets.rotation stamp.
*/}}
{{- define "ordersaga.rolloutAnnotations" -}}
checksum/config: {{ include "ordersaga.configData" . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include "ordersaga.secretData" . | sha256sum }}
{{- end }}
{{- with .Values.secrets.rotation }}
ordersaga.io/secrets-rotation: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
The SMTP login of the pods that send mail (worker: order mail; auth: account
mail). Not in the ConfigMap: a pod given the user name must get the password
too (the settings refuse one without the other), and the API needs neither.
*/}}
{{- define "ordersaga.mailEnv" -}}
{{- with .Values.smtp.username }}
- name: ORDERSAGA_SMTP_USERNAME
  value: {{ . | quote }}
{{ include "ordersaga.secretEnv" (dict "root" $ "name" "ORDERSAGA_SMTP_PASSWORD" "key" "smtpPassword") }}
{{- end }}
{{- end }}

{{/* The SMS provider and its credentials: the worker's only (it sends the texts). */}}
{{- define "ordersaga.smsEnv" -}}
{{- $sms := .Values.sms }}
- name: ORDERSAGA_SMS_PROVIDER
  value: {{ $sms.provider | quote }}
{{- if eq $sms.provider "twilio" }}
- name: ORDERSAGA_TWILIO_ACCOUNT_SID
  value: {{ required "sms.twilio.accountSid is required for sms.provider twilio" $sms.twilio.accountSid | quote }}
{{- if not (or $sms.twilio.fromNumber $sms.twilio.messagingServiceSid) }}
{{- fail "sms.twilio needs fromNumber or messagingServiceSid" }}
{{- end }}
{{- with $sms.twilio.fromNumber }}
- name: ORDERSAGA_TWILIO_FROM_NUMBER
  value: {{ . | quote }}
{{- end }}
{{- with $sms.twilio.messagingServiceSid }}
- name: ORDERSAGA_TWILIO_MESSAGING_SERVICE_SID
  value: {{ . | quote }}
{{- end }}
{{ include "ordersaga.secretEnv" (dict "root" $ "name" "ORDERSAGA_TWILIO_AUTH_TOKEN" "key" "twilioAuthToken") }}
{{- else if eq $sms.provider "africastalking" }}
- name: ORDERSAGA_AFRICASTALKING_USERNAME
  value: {{ required "sms.africastalking.username is required for sms.provider africastalking" $sms.africastalking.username | quote }}
{{- with $sms.africastalking.senderId }}
- name: ORDERSAGA_AFRICASTALKING_SENDER_ID
  value: {{ . | quote }}
{{- end }}
{{ include "ordersaga.secretEnv" (dict "root" $ "name" "ORDERSAGA_AFRICASTALKING_API_KEY" "key" "africastalkingApiKey") }}
{{- end }}
{{- end }}

{{/* The data of the chart-made Secret (templates/secret.yaml). */}}
{{- define "ordersaga.secretData" -}}
{{- $keys := .Values.secrets.keys }}
{{ $keys.databaseUrl }}: {{ required "secrets.databaseUrl is required when secrets.existingSecret is empty" .Values.secrets.databaseUrl | b64enc | quote }}
{{- if not .Values.secrets.jwtPrivateKeys }}
{{- fail "secrets.jwtPrivateKeys needs at least one PEM private key when secrets.existingSecret is empty" }}
{{- end }}
{{ $keys.jwtPrivateKeys }}: {{ .Values.secrets.jwtPrivateKeys | toJson | b64enc | quote }}
{{- with .Values.secrets.adminPassword }}
{{ $keys.adminPassword }}: {{ . | b64enc | quote }}
{{- end }}
{{- if .Values.temporal.apiKey.enabled }}
{{ $keys.temporalApiKey }}: {{ required "secrets.temporalApiKey is required when temporal.apiKey.enabled" .Values.secrets.temporalApiKey | b64enc | quote }}
{{- end }}
{{- if .Values.smtp.username }}
{{ $keys.smtpPassword }}: {{ required "secrets.smtpPassword is required when smtp.username is set" .Values.secrets.smtpPassword | b64enc | quote }}
{{- end }}
{{- if eq .Values.sms.provider "twilio" }}
{{ $keys.twilioAuthToken }}: {{ required "secrets.twilioAuthToken is required for sms.provider twilio" .Values.secrets.twilioAuthToken | b64enc | quote }}
{{- end }}
{{- if eq .Values.sms.provider "africastalking" }}
{{ $keys.africastalkingApiKey }}: {{ required "secrets.africastalkingApiKey is required for sms.provider africastalking" .Values.secrets.africastalkingApiKey | b64enc | quote }}
{{- end }}
{{- end }}
