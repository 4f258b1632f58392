{{/* Name of every object; the StatefulSet's pods are <fullname>-N. */}}
{{- define "ha-metrics-server.fullname" -}}
{{- default .Chart.Name .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* True (non-empty) when more than one replica: the HA objects and flags are rendered. */}}
{{- define "ha-metrics-server.ha" -}}
{{- if gt (int .Values.replicas) 1 -}}true{{- end -}}
{{- end -}}

{{- define "ha-metrics-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ha-metrics-server.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Pod selector; never change it on upgrade. */}}
{{- define "ha-metrics-server.selectorLabels" -}}
k8s-app: {{ include "ha-metrics-server.fullname" . }}
{{- end -}}

{{- define "ha-metrics-server.labels" -}}
{{ include "ha-metrics-server.selectorLabels" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
--peers value: every replica <fullname>-N for N < replicas, at its DNS name under the headless
Service <fullname>-peers, e.g. ha-metrics-server-0=ha-metrics-server-0.ha-metrics-server-peers.kube-system.svc:10251
*/}}
{{- define "ha-metrics-server.peers" -}}
{{- $name := include "ha-metrics-server.fullname" . -}}
{{- $namespace := .Release.Namespace -}}
{{- $port := int .Values.peerPort -}}
{{- $peers := list -}}
{{- range $i := until (int .Values.replicas) -}}
{{- $peers = append $peers (printf "%s-%d=%s-%d.%s-peers.%s.svc:%d" $name $i $name $i $name $namespace $port) -}}
{{- end -}}
{{- join "," $peers -}}
{{- end -}}

{{/* The Secret holding the serving certificate, or "" when the server makes its own. */}}
{{- define "ha-metrics-server.servingSecret" -}}
{{- if eq .Values.servingTLS.mode "generate" -}}
{{- default (printf "%s-serving-tls" (include "ha-metrics-server.fullname" .)) .Values.servingTLS.secretName -}}
{{- else if eq .Values.servingTLS.mode "existingSecret" -}}
{{- required "servingTLS.secretName is required with servingTLS.mode=existingSecret" .Values.servingTLS.secretName -}}
{{- else if ne .Values.servingTLS.mode "selfSigned" -}}
{{- fail (printf "servingTLS.mode must be generate, existingSecret or selfSigned, not %q" .Values.servingTLS.mode) -}}
{{- end -}}
{{- end -}}
