{{/* The extender stanza of a KubeSchedulerConfiguration; call with (dict "ctx" $ "url" "..." "https" bool). */}}
{{- define "plexus.extenderStanza" -}}
- urlPrefix: {{ .url }}
  filterVerb: filter
  prioritizeVerb: prioritize
  bindVerb: bind
  weight: {{ .ctx.Values.scheduler.weight }}
  nodeCacheCapable: true
  enableHTTPS: {{ .https }}
  {{- if .https }}
  tlsConfig:
    # The CA bundle of the extender's certificate: ca.crt of Secret {{ .ctx.Release.Namespace }}/{{ include "plexus.extenderSecret" .ctx }}.
    caFile: /etc/plexus-extender-ca/ca.crt
    serverName: plexus-extender.{{ .ctx.Release.Namespace }}.svc
  {{- end }}
  httpTimeout: {{ .ctx.Values.scheduler.httpTimeout }}
  ignorable: {{ .ctx.Values.scheduler.extenderIgnorable }}
  {{- /* kube-scheduler calls an extender with managedResources only for pods requesting one of
  them: never in secondary mode, whose pods all select networks (some need no device). */}}
  {{- if ne .ctx.Values.scheduler.mode "secondary" }}
  {{- with .ctx.Values.scheduler.managedResources }}
  managedResources:
    {{- range . }}
    - {name: {{ . }}, ignoredByScheduler: false}
    {{- end }}
  {{- end }}
  {{- end }}
{{- end -}}

{{/* RBAC rules of the extender (extender/watch): it lists and watches nodes, pods, NADs and IP
blocks into its cluster view, and binds the pods it judges (the bind verb). */}}
{{- define "plexus.extenderRules" -}}
- apiGroups: [""]
  resources: [nodes, pods]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [pods/binding]
  verbs: [create]
- apiGroups: [k8s.cni.cncf.io]
  resources: [network-attachment-definitions]
  verbs: [list, watch]
- apiGroups: [ipam.plexus.io]
  resources: [ipblocks]
  verbs: [list, watch]
# /metrics authenticates and authorizes its scrapers through the API server.
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [authorization.k8s.io]
  resources: [subjectaccessreviews]
  verbs: [create]
{{- end -}}


{{/* The second kube-scheduler's configuration (secondary mode). */}}
{{- define "plexus.schedulerConfig" -}}
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: true
  resourceNamespace: {{ .Release.Namespace }}
  resourceName: {{ .Values.scheduler.name }}
profiles:
  - schedulerName: {{ .Values.scheduler.name }}
extenders:
  {{- include "plexus.extenderStanza" (dict "ctx" $ "url" (printf "http://127.0.0.1:%v/" .Values.extender.port) "https" false) | nindent 2 }}
{{- end -}}
