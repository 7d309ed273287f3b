{{/* Standard labels for objects the chart renders itself. */}}
{{- define "edgeloop.labels" -}}
app.kubernetes.io/part-of: edgeloop
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
