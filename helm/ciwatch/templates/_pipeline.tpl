{{/*
The pipeline file the daemon reads (/etc/ciwatch/pipeline.yaml): the free-form `config`
sections, the rule packs added to rules.packs, and a service: section built from the
structured values. Secrets appear only as paths of files mounted from existing Secrets.
*/}}

{{- define "ciwatch.kafkaSettings" -}}
{{- $k := .Values.kafka }}
{{- $out := dict "bootstrap_servers" $k.bootstrapServers "topics" $k.topics "group_id" $k.groupId "auto_offset_reset" $k.autoOffsetReset "security_protocol" $k.securityProtocol }}
{{- if hasSuffix "SSL" $k.securityProtocol }}
{{- $_ := set $out "ssl_check_hostname" $k.tls.checkHostname }}
{{- end }}
{{- with $k.tls.secret }}
{{- if .name }}
{{- if .caKey }}{{ $_ := set $out "ssl_cafile" (include "ciwatch.secretFile" (list $ "kafka-tls" .caKey)) }}{{ end }}
{{- if .certKey }}{{ $_ := set $out "ssl_certfile" (include "ciwatch.secretFile" (list $ "kafka-tls" .certKey)) }}{{ end }}
{{- if .keyKey }}{{ $_ := set $out "ssl_keyfile" (include "ciwatch.secretFile" (list $ "kafka-tls" .keyKey)) }}{{ end }}
{{- end }}
{{- end }}
{{- if $k.sasl.mechanism }}
{{- $_ := set $out "sasl_mechanism" $k.sasl.mechanism }}
{{- $_ := set $out "sasl_plain_username" $k.sasl.username }}
{{- end }}
{{- if $k.sasl.passwordSecret.name }}
{{- $_ := set $out "sasl_plain_password_file" (include "ciwatch.secretFile" (list $ "kafka-sasl" $k.sasl.passwordSecret.key)) }}
{{- end }}
{{- toJson (merge $out (deepCopy $k.extraSettings)) }}
{{- end }}

{{- define "ciwatch.webhookSettings" -}}
{{- $w := .Values.webhook }}
{{- $out := dict "url" $w.url "format" $w.format "min_severity" $w.minSeverity }}
{{- if $w.tokenSecret.name }}
{{- $_ := set $out "token_file" (include "ciwatch.secretFile" (list $ "webhook-token" $w.tokenSecret.key)) }}
{{- end }}
{{- if $w.signingKeysSecret.name }}
{{- $files := list }}
{{- range $w.signingKeysSecret.keys }}
{{- $files = append $files (include "ciwatch.secretFile" (list $ "webhook-signing" .)) }}
{{- end }}
{{- $_ := set $out "signing_key_files" $files }}
{{- end }}
{{- with $w.tls.secret }}
{{- if .name }}
{{- if .caKey }}{{ $_ := set $out "ca_file" (include "ciwatch.secretFile" (list $ "webhook-tls" .caKey)) }}{{ end }}
{{- if .certKey }}{{ $_ := set $out "client_cert_file" (include "ciwatch.secretFile" (list $ "webhook-tls" .certKey)) }}{{ end }}
{{- if .keyKey }}{{ $_ := set $out "client_key_file" (include "ciwatch.secretFile" (list $ "webhook-tls" .keyKey)) }}{{ end }}
{{- end }}
{{- end }}
{{- toJson (merge $out (deepCopy $w.extraSettings)) }}
{{- end }}

{{- define "ciwatch.pipeline" -}}
{{- $v := .Values }}
{{- $service := dict "kafka" (include "ciwatch.kafkaSettings" . | fromJson) "http_host" "0.0.0.0" "http_port" $v.service.port "state_dir" "/var/lib/ciwatch" }}
{{- if $v.webhook.url }}
{{- $_ := set $service "webhook" (include "ciwatch.webhookSettings" . | fromJson) }}
{{- end }}
{{- if $v.alertsTopic.topic }}
{{- $_ := set $service "alerts_topic" (dict "topic" $v.alertsTopic.topic "min_severity" $v.alertsTopic.minSeverity) }}
{{- end }}
{{- $service = merge $service (deepCopy $v.extraServiceSettings) }}
{{- $config := deepCopy $v.config }}
{{- if $v.rulePacks }}
{{- $rules := get $config "rules" | default dict }}
{{- $packs := get $rules "packs" | default list }}
{{- range $name := keys $v.rulePacks | sortAlpha }}
{{- $packs = append $packs (printf "rules/%s" $name) }}
{{- end }}
{{- $_ := set $rules "packs" $packs }}
{{- $_ := set $config "rules" $rules }}
{{- end }}
{{- $_ := set $config "service" $service }}
{{- toYaml $config }}
{{- end }}
