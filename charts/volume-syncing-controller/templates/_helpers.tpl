{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "vsc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: the release name, plus the chart name unless it is in it. */}}
{{- define "vsc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vsc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the operator Pods (never change them: Deployment selectors are immutable). */}}
{{- define "vsc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vsc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "vsc.labels" -}}
helm.sh/chart: {{ include "vsc.chart" . }}
{{ include "vsc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: volume-syncing-controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "vsc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vsc.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The MutatingWebhookConfiguration (cluster-scoped: the full name must be unique in the cluster). */}}
{{- define "vsc.webhookConfigurationName" -}}
{{- include "vsc.fullname" . -}}
{{- end -}}

{{- define "vsc.serviceName" -}}
{{- include "vsc.fullname" . -}}
{{- end -}}

{{- define "vsc.leaseName" -}}
{{- default (include "vsc.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* The Secret the webhook's serving certificate is read from (or written to, when self-managed). */}}
{{- define "vsc.certificateSecretName" -}}
{{- if eq .Values.certificates.mode "existingSecret" -}}
{{- required "certificates.existingSecret.name is required when certificates.mode is existingSecret" .Values.certificates.existingSecret.name -}}
{{- else -}}
{{- default (printf "%s-webhook-tls" (include "vsc.fullname" .)) .Values.certificates.secretName -}}
{{- end -}}
{{- end -}}

{{/* The cert-manager Certificate of the serving certificate (named like its Secret). */}}
{{- define "vsc.certificateName" -}}
{{- printf "%s-webhook" (include "vsc.fullname" .) -}}
{{- end -}}

{{/*
The repository with its registry replaced by `global.imageRegistry` when that is set. The
first path component is a registry when it has a `.` or a `:` or is `localhost` (Docker's
rule); a repository without one (Docker Hub's `org/name`) gets the mirror put in front.
*/}}
{{- define "vsc.repository" -}}
{{- $repository := index . 0 -}}
{{- $root := index . 1 -}}
{{- $mirror := trimSuffix "/" (dig "imageRegistry" "" ($root.Values.global | default dict)) -}}
{{- $parts := splitn "/" 2 $repository -}}
{{- $first := $parts._0 -}}
{{- if not $mirror -}}
{{- $repository -}}
{{- else if and $parts._1 (or (contains "." $first) (contains ":" $first) (eq "localhost" $first)) -}}
{{- printf "%s/%s" $mirror $parts._1 -}}
{{- else -}}
{{- printf "%s/%s" $mirror $repository -}}
{{- end -}}
{{- end -}}

{{/* `repository:tag` or `repository@digest`; the tag defaults to the appVersion. */}}
{{- define "vsc.image" -}}
{{- $image := index . 0 -}}
{{- $root := index . 1 -}}
{{- $repository := include "vsc.repository" (list $image.repository $root) -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default $root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Fails the render on combinations that cannot work, with the reason. */}}
{{- define "vsc.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicas is %d but leaderElection.enabled is false: with more than one replica, set leaderElection.enabled=true so that only one replica reconciles PodFilesystemSyncs at a time" (int .Values.replicas)) -}}
{{- end -}}
{{- if lt (int .Values.replicas) 1 -}}
{{- fail "replicas must be at least 1: without a running operator, labelled Pods cannot be admitted (webhook.failurePolicy Fail) or get no restore and sync (Ignore)" -}}
{{- end -}}
{{- if not (has .Values.certificates.mode (list "selfManaged" "certManager" "existingSecret")) -}}
{{- fail (printf "certificates.mode must be selfManaged, certManager or existingSecret, not %q" .Values.certificates.mode) -}}
{{- end -}}
{{- if eq .Values.certificates.mode "existingSecret" -}}
{{- /* Fails first when the Secret name is missing. */ -}}
{{- $_ := include "vsc.certificateSecretName" . -}}
{{- end -}}
{{- if and (eq .Values.certificates.mode "existingSecret") (not .Values.certificates.existingSecret.caBundle) -}}
{{- fail "certificates.existingSecret.caBundle is required when certificates.mode is existingSecret: the PEM of the CA that signed the certificate in the Secret, so the API server trusts the webhook" -}}
{{- end -}}
{{- if and .Values.reports.enabled (not .Values.service.exposeMetrics) -}}
{{- fail "reports.enabled: the agents send their reports to the Service's admin port: set service.exposeMetrics=true" -}}
{{- end -}}
{{- if and (or .Values.metrics.serviceMonitor.enabled .Values.metrics.vmServiceScrape.enabled) (not .Values.service.exposeMetrics) -}}
{{- fail "metrics.serviceMonitor / metrics.vmServiceScrape scrape the Service's metrics port: set service.exposeMetrics=true" -}}
{{- end -}}
{{- end -}}

{{/* Where the injected agents send their sync reports: this Service's admin port. */}}
{{- define "vsc.reportUrl" -}}
{{- default (printf "http://%s.%s.svc:%v/report" (include "vsc.serviceName" .) .Release.Namespace .Values.operator.adminPort) .Values.reports.url -}}
{{- end -}}
