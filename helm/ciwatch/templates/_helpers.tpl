{{/* Names and labels shared by every template. */}}

{{- define "ciwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ciwatch.fullname" -}}
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

{{- define "ciwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ciwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ciwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ciwatch.labels" -}}
helm.sh/chart: {{ include "ciwatch.chart" . }}
{{ include "ciwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ciwatch
{{- end }}

{{- define "ciwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ciwatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ciwatch.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Where each referenced Secret is mounted; the config names files under it. */}}
{{- define "ciwatch.secretsDir" -}}/run/secrets/ciwatch{{- end }}

{{/*
The secret volumes: a list of {volume, dir, secret, keys} for every Secret reference
that is set. Rendered as YAML so the StatefulSet and the ConfigMap agree on the paths.
*/}}
{{- define "ciwatch.secretMounts" -}}
{{- $dir := include "ciwatch.secretsDir" . }}
{{- $mounts := list }}
{{- with .Values.webhook }}
{{- if and .url .tokenSecret.name }}
{{- $mounts = append $mounts (dict "volume" "webhook-token" "secret" .tokenSecret.name "keys" (list .tokenSecret.key)) }}
{{- end }}
{{- if and .url .signingKeysSecret.name }}
{{- $mounts = append $mounts (dict "volume" "webhook-signing" "secret" .signingKeysSecret.name "keys" .signingKeysSecret.keys) }}
{{- end }}
{{- $tls := .tls.secret }}
{{- if and .url $tls.name (compact (list $tls.caKey $tls.certKey $tls.keyKey)) }}
{{- $keys := compact (list $tls.caKey $tls.certKey $tls.keyKey) }}
{{- $mounts = append $mounts (dict "volume" "webhook-tls" "secret" $tls.name "keys" $keys) }}
{{- end }}
{{- end }}
{{- with .Values.kafka }}
{{- $tls := .tls.secret }}
{{- if and $tls.name (compact (list $tls.caKey $tls.certKey $tls.keyKey)) }}
{{- $keys := compact (list $tls.caKey $tls.certKey $tls.keyKey) }}
{{- $mounts = append $mounts (dict "volume" "kafka-tls" "secret" $tls.name "keys" $keys) }}
{{- end }}
{{- if .sasl.passwordSecret.name }}
{{- $mounts = append $mounts (dict "volume" "kafka-sasl" "secret" .sasl.passwordSecret.name "keys" (list .sasl.passwordSecret.key)) }}
{{- end }}
{{- end }}
{{- range $mounts }}
{{- $_ := set . "dir" (printf "%s/%s" $dir .volume) }}
{{- end }}
mounts: {{ toJson $mounts }}
{{- end }}

{{/* The path of one key of a mounted Secret, e.g. (list . "kafka-tls" "ca.crt"). */}}
{{- define "ciwatch.secretFile" -}}
{{- $root := index . 0 }}
{{- printf "%s/%s/%s" (include "ciwatch.secretsDir" $root) (index . 1) (index . 2) }}
{{- end }}

{{/*
Refuse a NetworkPolicy peer list that is empty or allows everything: an empty peer, an
empty selector, or a /0 CIDR. (values.schema.json refuses them too; this guards
--skip-schema-validation.)
*/}}
{{- define "ciwatch.checkPeers" -}}
{{- $what := index . 0 }}
{{- $peers := index . 1 }}
{{- if not $peers }}
{{- fail (printf "networkPolicy.%s.to is empty: list the peers ciwatch may reach (ipBlock CIDRs or selectors), or set networkPolicy.enabled=false" $what) }}
{{- end }}
{{- range $peers }}
{{- if not . }}
{{- fail (printf "networkPolicy.%s.to has an empty peer, which would allow every destination" $what) }}
{{- end }}
{{- if and (hasKey . "ipBlock") (hasSuffix "/0" (.ipBlock.cidr | default "")) }}
{{- fail (printf "networkPolicy.%s.to: ipBlock %s allows every address" $what .ipBlock.cidr) }}
{{- end }}
{{- range $kind, $selector := . }}
{{- if and (ne $kind "ipBlock") (not (or $selector.matchLabels $selector.matchExpressions)) }}
{{- fail (printf "networkPolicy.%s.to: an empty %s selects everything" $what $kind) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
