{{/* Names and labels shared by every template. */}}

{{- define "plexus.name" -}}
{{- .Values.nameOverride | default "plexus" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* plexus.labels: the common labels; call with (dict "ctx" $ "component" "webhook"). */}}
{{- define "plexus.labels" -}}
app.kubernetes.io/name: {{ include "plexus.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/component: {{ .component }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "plexus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "plexus.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* plexus.image: (dict "ctx" $ "name" "plexus-webhook" "image" .Values.webhook.image). */}}
{{- define "plexus.image" -}}
{{- $repo := .image.repository | default (printf "%s/%s" .ctx.Values.image.registry .name) -}}
{{- $tag := .image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The second kube-scheduler's image: the cluster's version unless set. */}}
{{- define "plexus.schedulerImage" -}}
{{- $tag := .Values.scheduler.image.tag | default (regexFind "^v[0-9]+\\.[0-9]+\\.[0-9]+" .Capabilities.KubeVersion.Version) -}}
{{- printf "%s:%s" .Values.scheduler.image.repository $tag -}}
{{- end -}}

{{- define "plexus.webhookSecret" -}}plexus-webhook-tls{{- end -}}
{{- define "plexus.extenderSecret" -}}plexus-extender-tls{{- end -}}

{{/* Whether the extender runs as its own Deployment behind a Service (HTTPS). */}}
{{- define "plexus.extenderService" -}}
{{- if eq .Values.scheduler.mode "extender-only" -}}true{{- end -}}
{{- end -}}

{{/* Namespaces the webhook never sees. */}}
{{- define "plexus.excludedNamespaces" -}}
{{- $ns := list "kube-system" .Release.Namespace -}}
{{- range .Values.excludedNamespaces }}{{ $ns = append $ns . }}{{ end -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{- define "plexus.pullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A restricted container security context for components that need no root. */}}
{{- define "plexus.restricted" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
  seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{/* Whether plexus-controller issues and rotates the serving certificates: certs.mode
self-managed and a component that serves HTTPS to the API server or the scheduler. */}}
{{- define "plexus.selfManagedCerts" -}}
{{- if and (eq .Values.certs.mode "self-managed") (or .Values.webhook.enabled (include "plexus.extenderService" .)) -}}true{{- end -}}
{{- end -}}
