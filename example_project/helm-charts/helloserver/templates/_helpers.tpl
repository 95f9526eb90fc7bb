{{/*
The Deployment and Service must be named after the Keptn service (helloservice): helm-service
derives <service>-primary and <service>-canary from them for blue_green_service.
*/}}
{{- define "helloserver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "helloserver.labels" -}}
app: {{ include "helloserver.name" . }}
app.kubernetes.io/name: {{ include "helloserver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "helloserver.selectorLabels" -}}
app: {{ include "helloserver.name" . }}
app.kubernetes.io/name: {{ include "helloserver.name" . }}
{{- end -}}
