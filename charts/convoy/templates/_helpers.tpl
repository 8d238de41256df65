{{/*
Name of the chart, or nameOverride.
*/}}
{{- define "convoy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, or the release name when
it already contains the chart name, or "<release>-<chart>".
*/}}
{{- define "convoy.fullname" -}}
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

{{/*
"chart-version" for the helm.sh/chart label.
*/}}
{{- define "convoy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the agent's pods; they never change across upgrades.
*/}}
{{- define "convoy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "convoy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels on every object of the chart.
*/}}
{{- define "convoy.labels" -}}
helm.sh/chart: {{ include "convoy.chart" . }}
{{ include "convoy.selectorLabels" . }}
app.kubernetes.io/version: {{ include "convoy.imageTag" . | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: convoy
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "convoy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "convoy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag: image.tag, or the chart's appVersion.
*/}}
{{- define "convoy.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
Where the agent finds its config and the files mounted from Secrets. The
agent's config refers to these paths; the Deployment mounts them.
*/}}
{{- define "convoy.configDir" -}}/etc/convoy{{- end }}
{{- define "convoy.kubeconfigDir" -}}/etc/convoy/kubeconfig{{- end }}
{{- define "convoy.secretsDir" -}}/var/run/secrets/convoy{{- end }}

{{/*
The agent's config file (AgentConfig), rendered from values.
*/}}
{{- define "convoy.config" -}}
{{- $secrets := include "convoy.secretsDir" . -}}
{{- $auth := .Values.repo.auth -}}
{{- if and (ne $auth.method "none") (not $auth.secretName) }}
{{- fail (printf "repo.auth.secretName is required when repo.auth.method is %s" $auth.method) }}
{{- end }}
{{- if and (eq .Values.repo.verify.mode "head") (not .Values.repo.verify.keysSecretName) }}
{{- fail "repo.verify.keysSecretName is required when repo.verify.mode is head" }}
{{- end }}
{{- if and .Values.webhook.secretName (not .Values.github.repo) }}
{{- fail "github.repo (OWNER/REPO) is required when webhook.secretName is set: the webhook acts only on that repository's deliveries" }}
{{- end -}}
apiVersion: convoy.dev/v1alpha1
kind: AgentConfig
repo:
  url: {{ required "repo.url is required: the URL of the fleet's Git repository" .Values.repo.url | quote }}
  branch: {{ .Values.repo.branch | quote }}
  pollInterval: {{ .Values.repo.pollInterval | quote }}
  {{- if eq $auth.method "token" }}
  auth:
    tokenFile: {{ $secrets }}/git/token
  {{- else if eq $auth.method "basic" }}
  auth:
    usernameFile: {{ $secrets }}/git/username
    passwordFile: {{ $secrets }}/git/password
  {{- else if eq $auth.method "ssh" }}
  auth:
    sshKeyFile: {{ $secrets }}/git/identity
    knownHostsFile: {{ $secrets }}/git/known_hosts
  {{- end }}
  {{- if eq .Values.repo.verify.mode "head" }}
  verify:
    mode: head
    keysFile: {{ $secrets }}/gpg/keys.asc
  {{- else }}
  verify:
    mode: "off"
  {{- end }}
kubeconfig:
  file: {{ include "convoy.kubeconfigDir" . }}/config
{{- if and .Values.github.app.privateKeySecretName .Values.github.tokenSecretName }}
{{- fail "github.tokenSecretName and github.app.privateKeySecretName: use one of them" }}
{{- end }}
{{- if and .Values.github.app.privateKeySecretName (or (not .Values.github.app.id) (not .Values.github.app.installationID)) }}
{{- fail "github.app.id and github.app.installationID are required with github.app.privateKeySecretName" }}
{{- end }}
{{- if or .Values.github.tokenSecretName .Values.github.repo .Values.github.app.privateKeySecretName }}
github:
  api: {{ .Values.github.api | quote }}
  {{- if .Values.github.tokenSecretName }}
  tokenFile: {{ $secrets }}/github/token
  {{- end }}
  {{- if .Values.github.app.privateKeySecretName }}
  app:
    id: {{ int64 .Values.github.app.id }}
    installationID: {{ int64 .Values.github.app.installationID }}
    privateKeyFile: {{ $secrets }}/github-app/private-key.pem
  {{- end }}
  {{- with .Values.github.repo }}
  repo: {{ . | quote }}
  {{- end }}
{{- end }}
{{- if .Values.webhook.secretName }}
webhook:
  secretFile: {{ $secrets }}/webhook/secret
{{- end }}
listen:
  http: ":8080"
  {{- if .Values.statusToken.secretName }}
  statusTokenFile: {{ $secrets }}/status/token
  {{- end }}
leaderElection:
  enabled: {{ .Values.leaderElection.enabled }}
  namespace: {{ .Release.Namespace | quote }}
  leaseName: {{ .Values.leaderElection.leaseName | quote }}
log:
  format: {{ .Values.log.format | quote }}
  level: {{ .Values.log.level | quote }}
{{- end }}
