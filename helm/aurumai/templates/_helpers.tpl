{{/*
Names, labels, images, security contexts, secrets and the settings every service shares.
*/}}

{{- define "aurumai.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-aurumai, or the release name when it already contains the chart name. */}}
{{- define "aurumai.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of a component's resources: (list $ "gateway"). */}}
{{- define "aurumai.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "aurumai.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aurumai.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every pod of the release: the default-deny NetworkPolicy selects these. */}}
{{- define "aurumai.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "aurumai.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of a component: (list $ "gateway"). */}}
{{- define "aurumai.selectorLabels" -}}
{{- $root := index . 0 -}}
{{ include "aurumai.releaseSelectorLabels" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* All labels of a component's resources: (list $ "gateway"). */}}
{{- define "aurumai.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "aurumai.chart" $root }}
{{ include "aurumai.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: aurumai
{{- end -}}

{{/*
An image reference: (dict "root" $ "image" .Values.gateway.image "aurum" true).
AurumAI images ("aurum" true) fall back to image.registry and image.tag, then to the chart's
appVersion; other images name their own registry and tag. A digest pins the image:
repository:tag@sha256:...
*/}}
{{- define "aurumai.image" -}}
{{- $root := .root -}}
{{- $img := .image -}}
{{- $registry := $img.registry -}}
{{- $tag := $img.tag -}}
{{- if .aurum -}}
{{- $registry = default $root.Values.image.registry $img.registry -}}
{{- $tag = default (default $root.Chart.AppVersion $root.Values.image.tag) $img.tag -}}
{{- end -}}
{{- if not $tag -}}
{{- fail (printf "image %s needs a tag" $img.repository) -}}
{{- end -}}
{{- $ref := $img.repository -}}
{{- if $registry -}}
{{- $ref = printf "%s/%s" (trimSuffix "/" $registry) $img.repository -}}
{{- end -}}
{{- if $img.digest -}}
{{- printf "%s:%s@%s" $ref $tag $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref $tag -}}
{{- end -}}
{{- end -}}

{{/* imagePullPolicy: (dict "root" $ "image" .Values.gateway.image). */}}
{{- define "aurumai.pullPolicy" -}}
{{- default .root.Values.image.pullPolicy .image.pullPolicy -}}
{{- end -}}

{{- define "aurumai.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The pod security context of the Kubernetes "restricted" Pod Security Standard, for a uid:
(dict "uid" 65532). The group of mounted volumes (fsGroup) is the same id, so secret files
(mode 0440) and persistent volumes are readable and writable by the process.
*/}}
{{- define "aurumai.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .uid }}
  runAsGroup: {{ .uid }}
  fsGroup: {{ .uid }}
  fsGroupChangePolicy: OnRootMismatch
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* The container security context of the restricted standard: (dict "uid" 65532). */}}
{{- define "aurumai.containerSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .uid }}
  runAsGroup: {{ .uid }}
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  privileged: false
  capabilities:
    drop:
      - ALL
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* The uid of the AurumAI images (distroless "nonroot"). */}}
{{- define "aurumai.uid" -}}65532{{- end -}}

{{/* Spread a component's replicas over nodes and zones unless values give constraints:
(list $ "gateway" .Values.gateway.topologySpreadConstraints). */}}
{{- define "aurumai.topologySpread" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $given := index . 2 -}}
topologySpreadConstraints:
{{- if $given }}
{{ toYaml $given | indent 2 }}
{{- else }}
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
{{ include "aurumai.selectorLabels" (list $root $component) | indent 8 }}
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
{{ include "aurumai.selectorLabels" (list $root $component) | indent 8 }}
{{- end }}
{{- end -}}

{{/* ------------------------------------------------------------------------------------- */}}
{{/* Secrets                                                                               */}}

{{/* The key names of each group of credentials (fixed: `make secrets` generates them). */}}
{{- define "aurumai.secretKeys" -}}
database:
  - database-admin-password
  - database-ingestion-password
  - database-prediction-password
  - database-auth-password
  - database-gateway-password
mqtt:
  - mqtt-admin-password
  - mqtt-ingestion-password
auth:
  - auth-key-encryption-key
  - auth-bootstrap-admin-password
  - ingestion-client-secret
{{- end -}}

{{/* The existing Secret named for a group, or "": (list $ "database"). */}}
{{- define "aurumai.existingSecretFor" -}}
{{- $root := index . 0 -}}
{{- $group := index . 1 -}}
{{- $own := "" -}}
{{- if eq $group "database" -}}
{{- $own = $root.Values.postgresql.auth.existingSecret -}}
{{- else if eq $group "mqtt" -}}
{{- $own = $root.Values.mqtt.auth.existingSecret -}}
{{- else if eq $group "auth" -}}
{{- $own = $root.Values.auth.existingSecret -}}
{{- end -}}
{{- default $root.Values.secrets.existingSecret $own -}}
{{- end -}}

{{- define "aurumai.generatedSecretName" -}}
{{- printf "%s-secrets" (include "aurumai.fullname" .) -}}
{{- end -}}

{{/* The Secret holding a group's keys: (list $ "database"). */}}
{{- define "aurumai.secretName" -}}
{{- $root := index . 0 -}}
{{- default (include "aurumai.generatedSecretName" $root) (include "aurumai.existingSecretFor" .) -}}
{{- end -}}

{{/*
The generated secret values (JSON: key -> value) of the groups no existing Secret covers.
A value already in the release's generated Secret is kept (lookup), so upgrades never change
a password; a missing one is 32 (keys: 48) random letters and digits. The result is computed
once per render and memoised on the root context, so every template (the Secret itself and the
checksum annotations of the pods) sees the same values.
*/}}
{{- define "aurumai.generatedSecretData" -}}
{{- if not (hasKey . "aurumaiGeneratedSecretData") -}}
{{- $existing := dict -}}
{{- $found := lookup "v1" "Secret" .Release.Namespace (include "aurumai.generatedSecretName" .) -}}
{{- if and $found $found.data -}}
{{- $existing = $found.data -}}
{{- end -}}
{{- $data := dict -}}
{{- $groups := include "aurumai.secretKeys" . | fromYaml -}}
{{- range $group, $keys := $groups -}}
{{- if not (include "aurumai.existingSecretFor" (list $ $group)) -}}
{{- range $keys -}}
{{- if hasKey $existing . -}}
{{- $_ := set $data . (index $existing . | b64dec) -}}
{{- else if hasSuffix "-key" . -}}
{{- $_ := set $data . (randAlphaNum 48) -}}
{{- else -}}
{{- $_ := set $data . (randAlphaNum 32) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $_ := set . "aurumaiGeneratedSecretData" $data -}}
{{- end -}}
{{- index . "aurumaiGeneratedSecretData" | toJson -}}
{{- end -}}

{{/*
A checksum of every secret value the pods read: the generated ones, and the existing Secrets'
data as the cluster has them now (lookup; empty when rendering offline). A changed value rolls
the pods on the next upgrade.
*/}}
{{- define "aurumai.secretsChecksum" -}}
{{- $parts := list (include "aurumai.generatedSecretData" .) -}}
{{- range $group := list "database" "mqtt" "auth" -}}
{{- $name := include "aurumai.existingSecretFor" (list $ $group) -}}
{{- if $name -}}
{{- $found := lookup "v1" "Secret" $.Release.Namespace $name -}}
{{- $parts = append $parts (printf "%s=%s" $name (toJson (default (dict) ($found).data))) -}}
{{- end -}}
{{- end -}}
{{- join "\n" $parts | sha256sum -}}
{{- end -}}

{{/*
A projected volume of secret files, one file per key, mounted at /run/secrets/aurumai:
(dict "root" $ "keys" (list "database-gateway-password")). Keys come from the Secret of their
group; mode 0440, readable through the pod's fsGroup only.
*/}}
{{- define "aurumai.secretsVolume" -}}
{{- $root := .root -}}
{{- $groups := include "aurumai.secretKeys" $root | fromYaml -}}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
{{- range $group, $keys := $groups }}
{{- $wanted := list }}
{{- range $keys }}
{{- if has . $.keys }}
{{- $wanted = append $wanted . }}
{{- end }}
{{- end }}
{{- if $wanted }}
      - secret:
          name: {{ include "aurumai.secretName" (list $root $group) }}
          items:
{{- range $wanted }}
            - key: {{ . }}
              path: {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Where a secret key's file is. */}}
{{- define "aurumai.secretFile" -}}
/run/secrets/aurumai/{{ . }}
{{- end -}}

{{/* ------------------------------------------------------------------------------------- */}}
{{/* Endpoints                                                                             */}}

{{/* The OpenID issuer: oidc.issuer, else https://<first ingress host>/auth, where the gateway
passes the auth service's OpenID Connect endpoints through (its fixed prefix /auth). */}}
{{- define "aurumai.issuer" -}}
{{- if .Values.oidc.issuer -}}
{{- trimSuffix "/" .Values.oidc.issuer -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- printf "https://%s/auth" (first .Values.ingress.hosts) -}}
{{- else -}}
{{- fail "oidc.issuer is required when ingress.enabled is false: set the https:// URL under which the gateway's /auth is public (e.g. https://api.example.com/auth)" -}}
{{- end -}}
{{- end -}}

{{/* The networks whose X-Forwarded-For entries the gateway and auth trust, comma-separated:
ingress.trustedProxies behind the chart's Ingress, none without it. */}}
{{- define "aurumai.trustedProxies" -}}
{{- if .Values.ingress.enabled -}}
{{- join "," .Values.ingress.trustedProxies -}}
{{- end -}}
{{- end -}}

{{- define "aurumai.serviceUrl" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $port := index . 2 -}}
{{- printf "http://%s:%v" (include "aurumai.componentName" (list $root $component)) $port -}}
{{- end -}}

{{- define "aurumai.authUrl" -}}
{{- include "aurumai.serviceUrl" (list . "auth" .Values.auth.service.port) -}}
{{- end -}}

{{/* PostgreSQL: host, port and the CA Secret (name and key; "" when sslmode needs none). */}}
{{- define "aurumai.db.host" -}}
{{- if .Values.postgresql.bundled.enabled -}}
{{- include "aurumai.componentName" (list . "postgresql") -}}
{{- else -}}
{{- required "postgresql.external.host is required when postgresql.bundled.enabled is false" .Values.postgresql.external.host -}}
{{- end -}}
{{- end -}}

{{- define "aurumai.db.port" -}}
{{- if .Values.postgresql.bundled.enabled -}}5432{{- else -}}{{ .Values.postgresql.external.port }}{{- end -}}
{{- end -}}

{{- define "aurumai.db.tlsSecret" -}}
{{- default (printf "%s-tls" (include "aurumai.componentName" (list . "postgresql"))) .Values.postgresql.bundled.tlsSecret -}}
{{- end -}}

{{- define "aurumai.db.caSecret" -}}
{{- if .Values.postgresql.ca.secretName -}}
{{- .Values.postgresql.ca.secretName -}}
{{- else if .Values.postgresql.bundled.enabled -}}
{{- include "aurumai.db.tlsSecret" . -}}
{{- else if has .Values.postgresql.sslmode (list "verify-ca" "verify-full") -}}
{{- fail (printf "postgresql.ca.secretName is required with sslmode %s: the CA certificate that signed the database server's certificate" .Values.postgresql.sslmode) -}}
{{- end -}}
{{- end -}}

{{- define "aurumai.db.caKey" -}}
{{- if .Values.postgresql.ca.secretName -}}{{ .Values.postgresql.ca.key }}{{- else -}}ca.crt{{- end -}}
{{- end -}}

{{/* MQTT: the broker URL and the CA Secret ("" for the system roots). */}}
{{- define "aurumai.mqtt.url" -}}
{{- if .Values.mqtt.bundled.enabled -}}
{{- printf "mqtts://%s:8883" (include "aurumai.componentName" (list . "mosquitto")) -}}
{{- else -}}
{{- required "mqtt.external.url is required when mqtt.bundled.enabled is false" .Values.mqtt.external.url -}}
{{- end -}}
{{- end -}}

{{- define "aurumai.mqtt.port" -}}
{{- $u := urlParse (include "aurumai.mqtt.url" .) -}}
{{- $port := trimPrefix (printf "%s:" $u.hostname) $u.host -}}
{{- if and $port (ne $port $u.host) -}}{{ $port }}{{- else -}}8883{{- end -}}
{{- end -}}

{{- define "aurumai.mqtt.tlsSecret" -}}
{{- default (printf "%s-tls" (include "aurumai.componentName" (list . "mosquitto"))) .Values.mqtt.bundled.tlsSecret -}}
{{- end -}}

{{- define "aurumai.mqtt.caSecret" -}}
{{- if .Values.mqtt.ca.secretName -}}
{{- .Values.mqtt.ca.secretName -}}
{{- else if .Values.mqtt.bundled.enabled -}}
{{- include "aurumai.mqtt.tlsSecret" . -}}
{{- end -}}
{{- end -}}

{{- define "aurumai.mqtt.caKey" -}}
{{- if .Values.mqtt.ca.secretName -}}{{ .Values.mqtt.ca.key }}{{- else -}}ca.crt{{- end -}}
{{- end -}}

{{/* The OTLP endpoint: otel.endpoint, else the bundled Jaeger's, else "". */}}
{{- define "aurumai.otel.endpoint" -}}
{{- if .Values.otel.endpoint -}}
{{- .Values.otel.endpoint -}}
{{- else if .Values.jaeger.enabled -}}
{{- $port := ternary 4317 4318 (eq .Values.otel.protocol "grpc") -}}
{{- include "aurumai.serviceUrl" (list . "jaeger" $port) -}}
{{- end -}}
{{- end -}}

{{- define "aurumai.otel.port" -}}
{{- $u := urlParse (include "aurumai.otel.endpoint" .) -}}
{{- $port := trimPrefix (printf "%s:" $u.hostname) $u.host -}}
{{- if and $port (ne $port $u.host) -}}
{{- $port -}}
{{- else if eq $u.scheme "https" -}}
443
{{- else -}}
{{- ternary 4317 4318 (eq .Values.otel.protocol "grpc") -}}
{{- end -}}
{{- end -}}

{{/* ------------------------------------------------------------------------------------- */}}
{{/* Environment                                                                           */}}

{{/*
What every service reads (docs/configuration.md): the production profile, the HTTP listener,
its own database role with its password from a file, TLS to the database, logs and traces.
(dict "root" $ "component" "gateway" "port" 8080 "role" "aurumai_gateway"
 "passwordKey" "database-gateway-password")
*/}}
{{- define "aurumai.commonEnv" -}}
{{- $root := .root -}}
- name: AURUM_PROFILE
  value: production
- name: AURUM_HTTP__HOST
  value: "0.0.0.0"
- name: AURUM_HTTP__PORT
  value: {{ .port | quote }}
# /metrics apart from the API, so the monitoring NetworkPolicy opens this port alone.
- name: AURUM_HTTP__METRICS_PORT
  value: {{ $root.Values.metrics.port | quote }}
- name: AURUM_HTTP__SHUTDOWN_TIMEOUT_S
  value: {{ $root.Values.common.shutdownTimeoutSeconds | quote }}
- name: AURUM_TELEMETRY__LOG_FORMAT
  value: json
- name: AURUM_TELEMETRY__LOG_LEVEL
  value: {{ $root.Values.common.logLevel | quote }}
{{ include "aurumai.databaseEnv" . }}
- name: AURUM_DATABASE__POOL_MAX_SIZE
  value: {{ $root.Values.common.databasePoolMaxSize | quote }}
{{ include "aurumai.otelEnv" . }}
{{- end -}}

{{/* The database connection of one service role (see aurumai.commonEnv for the arguments). */}}
{{- define "aurumai.databaseEnv" -}}
{{- $root := .root -}}
- name: AURUM_DATABASE__HOST
  value: {{ include "aurumai.db.host" $root | quote }}
- name: AURUM_DATABASE__PORT
  value: {{ include "aurumai.db.port" $root | quote }}
- name: AURUM_DATABASE__NAME
  value: {{ $root.Values.postgresql.database | quote }}
- name: AURUM_DATABASE__USER
  value: {{ .role | quote }}
- name: AURUM_DATABASE__PASSWORD_FILE
  value: {{ include "aurumai.secretFile" .passwordKey }}
- name: AURUM_DATABASE__SSLMODE
  value: {{ $root.Values.postgresql.sslmode | quote }}
{{- if include "aurumai.db.caSecret" $root }}
- name: AURUM_DATABASE__SSLROOTCERT
  value: /etc/aurumai/tls/database/ca.crt
{{- end }}
{{- end -}}

{{/* OpenTelemetry export, when an endpoint is known: (dict "root" $ "component" "gateway"). */}}
{{- define "aurumai.otelEnv" -}}
{{- $root := .root -}}
- name: OTEL_SERVICE_NAME
  value: {{ printf "aurum-%s" .component | quote }}
{{- with include "aurumai.otel.endpoint" $root }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $root.Values.otel.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $root.Values.otel.samplingRatio | toString | quote }}
{{- end }}
{{- end -}}

{{/* Token verification against the auth service (ingestion, prediction, gateway). */}}
{{- define "aurumai.tokenEnv" -}}
- name: AURUM_AUTH__ISSUER
  value: {{ include "aurumai.issuer" . | quote }}
- name: AURUM_AUTH__JWKS_URL
  value: {{ printf "%s/jwks" (include "aurumai.authUrl" .) | quote }}
{{- end -}}

{{/* The CA volumes a service needs: (dict "root" $ "database" true "mqtt" true). */}}
{{- define "aurumai.caVolumes" -}}
{{- $root := .root -}}
{{- if and .database (include "aurumai.db.caSecret" $root) }}
- name: database-ca
  secret:
    secretName: {{ include "aurumai.db.caSecret" $root }}
    defaultMode: 0444
    items:
      - key: {{ include "aurumai.db.caKey" $root }}
        path: ca.crt
{{- end }}
{{- if and .mqtt (include "aurumai.mqtt.caSecret" $root) }}
- name: mqtt-ca
  secret:
    secretName: {{ include "aurumai.mqtt.caSecret" $root }}
    defaultMode: 0444
    items:
      - key: {{ include "aurumai.mqtt.caKey" $root }}
        path: ca.crt
{{- end }}
{{- end -}}

{{- define "aurumai.caVolumeMounts" -}}
{{- $root := .root -}}
{{- if and .database (include "aurumai.db.caSecret" $root) }}
- name: database-ca
  mountPath: /etc/aurumai/tls/database
  readOnly: true
{{- end }}
{{- if and .mqtt (include "aurumai.mqtt.caSecret" $root) }}
- name: mqtt-ca
  mountPath: /etc/aurumai/tls/mqtt
  readOnly: true
{{- end }}
{{- end -}}

{{/* Probes on a service's HTTP port: /healthz (startup, liveness) and /readyz (readiness). */}}
{{- define "aurumai.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 2
  timeoutSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 3
{{- end -}}

{{/* preStop pause (Kubernetes 1.30+), so that endpoints are removed before SIGTERM. */}}
{{- define "aurumai.lifecycle" -}}
{{- if and (gt (int .Values.common.preStopSleepSeconds) 0) (semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version) }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ .Values.common.preStopSleepSeconds }}
{{- end }}
{{- end -}}

{{/* The pod's grace period: the preStop pause, the shutdown timeout and a margin (extra). */}}
{{- define "aurumai.terminationGrace" -}}
{{- add .root.Values.common.preStopSleepSeconds .root.Values.common.shutdownTimeoutSeconds .extra -}}
{{- end -}}
