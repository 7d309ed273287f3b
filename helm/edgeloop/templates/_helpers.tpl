{{/* Standard labels for objects the chart renders itself. */}}
{{- define "edgeloop.labels" -}}
app.kubernetes.io/part-of: edgeloop
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* The namespace everything goes to. */}}
{{- define "edgeloop.namespace" -}}
{{ .Values.namespace | default .Release.Namespace }}
{{- end -}}

{{/* MLflow: the in-chart server when enabled, else mlflow.trackingUri. */}}
{{- define "edgeloop.trackingUri" -}}
{{- if .Values.mlflowServer.enabled -}}
http://edgeloop-mlflow.{{ include "edgeloop.namespace" . }}.svc:5000
{{- else -}}
{{ .Values.mlflow.trackingUri }}
{{- end -}}
{{- end -}}

{{/* The intake the controller and CLI read the fleet from. */}}
{{- define "edgeloop.intakeUrl" -}}
{{ .Values.intake.url | default (printf "http://edgeloop-intake.%s.svc:8000" (include "edgeloop.namespace" .)) }}
{{- end -}}

{{/* The platform image, by digest when one is set. */}}
{{- define "edgeloop.image" -}}
{{ .Values.image.repository }}{{ if .Values.image.digest }}@{{ .Values.image.digest }}{{ else }}:{{ .Values.image.tag }}{{ end }}
{{- end -}}
