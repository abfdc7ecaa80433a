package chart

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	schedv1 "k8s.io/kube-scheduler/config/v1"
	"sigs.k8s.io/yaml"

	dpconfig "github.com/plexus-project/plexus/deviceplugin/config"
	webhookconfig "github.com/plexus-project/plexus/webhook/config"
)

// TestRendered checks, in every mode, what the chart promises of the objects it renders.
func TestRendered(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			objs := objects(t, render(t, m.args()...))
			checkLeastPrivilege(t, objs)
			checkIdentities(t, objs)
			checkWebhook(t, objs, m)
			checkScheduler(t, objs, m)
			checkCerts(t, objs, m)
			checkDevicePlugin(t, objs)
		})
	}
}

// checkLeastPrivilege: no rule grants "*" of anything.
func checkLeastPrivilege(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Role" && o.GetKind() != "ClusterRole" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		if len(rules) == 0 {
			t.Errorf("%s %s has no rules", o.GetKind(), o.GetName())
		}
		for _, r := range rules {
			for _, field := range []string{"verbs", "resources", "apiGroups", "resourceNames"} {
				vals, _, _ := unstructured.NestedStringSlice(r.(map[string]any), field)
				if slices.Contains(vals, "*") {
					t.Errorf("%s %s grants * in %s", o.GetKind(), o.GetName(), field)
				}
			}
		}
	}
}

// checkIdentities: every workload runs under its own ServiceAccount of the chart, which is bound.
func checkIdentities(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	bound := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() == "RoleBinding" || o.GetKind() == "ClusterRoleBinding" {
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, s := range subjects {
				bound[s.(map[string]any)["name"].(string)] = true
			}
		}
	}
	used := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" && o.GetKind() != "DaemonSet" {
			continue
		}
		sa, _, _ := unstructured.NestedString(o.Object, "spec", "template", "spec", "serviceAccountName")
		switch {
		case sa == "":
			t.Errorf("%s %s runs as the default ServiceAccount", o.GetKind(), o.GetName())
		case find(objs, "ServiceAccount", sa) == nil:
			t.Errorf("%s %s runs as ServiceAccount %s, which the chart does not create", o.GetKind(), o.GetName(), sa)
		case !bound[sa]:
			t.Errorf("ServiceAccount %s of %s is bound to no role", sa, o.GetName())
		case used[sa] != "":
			t.Errorf("%s and %s share ServiceAccount %s", used[sa], o.GetName(), sa)
		}
		used[sa] = o.GetName()
	}
}

func checkWebhook(t *testing.T, objs []*unstructured.Unstructured, m mode) {
	t.Helper()
	d := find(objs, "Deployment", "plexus-webhook")
	if d == nil {
		t.Fatal("no webhook Deployment")
	}
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 2 {
		t.Errorf("webhook replicas = %d, want 2", r)
	}
	if _, ok, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec", "affinity", "podAntiAffinity"); !ok {
		t.Error("the webhook replicas have no anti-affinity")
	}
	c := container(t, d, "webhook")
	for _, p := range []string{"readinessProbe", "livenessProbe"} {
		if c[p] == nil {
			t.Errorf("the webhook has no %s", p)
		}
	}
	if find(objs, "PodDisruptionBudget", "plexus-webhook") == nil {
		t.Error("no PodDisruptionBudget for the webhook")
	}
	podUpdates := false
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		cfg := find(objs, kind, "plexus-webhook")
		if cfg == nil {
			t.Fatalf("no %s", kind)
		}
		inject := cfg.GetAnnotations()["cert-manager.io/inject-ca-from"]
		if (m.certs == "cert-manager") != (inject == namespace+"/plexus-webhook") {
			t.Errorf("%s: inject-ca-from = %q in %s mode", kind, inject, m.certs)
		}
		hooks, _, _ := unstructured.NestedSlice(cfg.Object, "webhooks")
		for _, h := range hooks {
			w := h.(map[string]any)
			name := w["name"].(string)
			if w["failurePolicy"] != "Fail" || w["sideEffects"] != "None" || w["timeoutSeconds"] == nil {
				t.Errorf("%s: failurePolicy %v, sideEffects %v, timeoutSeconds %v", name, w["failurePolicy"], w["sideEffects"], w["timeoutSeconds"])
			}
			excluded, _, _ := unstructured.NestedStringSlice(w, "namespaceSelector", "matchExpressions", "0", "values")
			if y, _ := yaml.Marshal(w["namespaceSelector"]); !strings.Contains(string(y), "kube-system") || !strings.Contains(string(y), namespace) {
				t.Errorf("%s: the namespace selector does not exclude kube-system and %s: %s%v", name, namespace, y, excluded)
			}
			if strings.HasPrefix(name, "pods.") {
				conds, _, _ := unstructured.NestedSlice(w, "matchConditions")
				if len(conds) == 0 || !strings.Contains(fmt.Sprint(conds), "k8s.v1.cni.cncf.io/networks") {
					t.Errorf("%s: pods without a networks annotation reach the webhook (matchConditions %v)", name, conds)
				}
			}
			if name == webhookconfig.ValidatePodUpdates {
				podUpdates = true
				conds, _, _ := unstructured.NestedSlice(w, "matchConditions")
				if len(conds) != 1 || conds[0].(map[string]any)["expression"] != webhookconfig.NetworksChangedExpression {
					t.Errorf("%s: matchConditions %v, want the one expression webhook/config uses: %s", name, conds, webhookconfig.NetworksChangedExpression)
				}
			}
		}
	}
	if !podUpdates {
		t.Errorf("no %s webhook: a scheduled pod's networks could be changed by an update", webhookconfig.ValidatePodUpdates)
	}
}

func checkScheduler(t *testing.T, objs []*unstructured.Unstructured, m mode) {
	t.Helper()
	sched, ext := find(objs, "Deployment", "plexus-scheduler"), find(objs, "Deployment", "plexus-extender")
	webhookArgs, _, _ := unstructured.NestedSlice(container(t, find(objs, "Deployment", "plexus-webhook"), "webhook"), "args")
	if handsOver := slices.Contains(webhookArgs, any("--scheduler-name=plexus-scheduler")); handsOver != (m.scheduler == "secondary") {
		t.Errorf("the webhook sets schedulerName on pods: %v in scheduler mode %s", handsOver, m.scheduler)
	}
	switch m.scheduler {
	case "secondary":
		if sched == nil || ext != nil {
			t.Fatalf("secondary: scheduler Deployment %v, extender Deployment %v; want only the scheduler", sched != nil, ext != nil)
		}
		container(t, sched, "kube-scheduler")
		container(t, sched, "extender")
		cm := find(objs, "ConfigMap", "plexus-scheduler")
		if cm == nil {
			t.Fatal("no KubeSchedulerConfiguration ConfigMap")
		}
		raw, _, _ := unstructured.NestedString(cm.Object, "data", "config.yaml")
		var cfg schedv1.KubeSchedulerConfiguration
		if err := yaml.UnmarshalStrict([]byte(raw), &cfg); err != nil {
			t.Fatalf("the KubeSchedulerConfiguration does not decode strictly: %v\n%s", err, raw)
		}
		if len(cfg.Profiles) != 1 || cfg.Profiles[0].SchedulerName == nil || *cfg.Profiles[0].SchedulerName != "plexus-scheduler" {
			t.Errorf("profiles = %+v", cfg.Profiles)
		}
		// managedResources would make kube-scheduler skip the extender for pods whose networks
		// need no device.
		if len(cfg.Extenders) != 1 || !strings.HasPrefix(cfg.Extenders[0].URLPrefix, "http://127.0.0.1:") || !cfg.Extenders[0].NodeCacheCapable ||
			cfg.Extenders[0].FilterVerb != "filter" || len(cfg.Extenders[0].ManagedResources) != 0 {
			t.Errorf("extenders = %+v", cfg.Extenders)
		}
	case "extender-only":
		if sched != nil || ext == nil || find(objs, "Service", "plexus-extender") == nil {
			t.Fatalf("extender-only: scheduler %v, extender %v; want the extender and its Service only", sched != nil, ext != nil)
		}
	case "none":
		if sched != nil || ext != nil {
			t.Fatal("none: no scheduler or extender expected")
		}
	}
}

func checkCerts(t *testing.T, objs []*unstructured.Unstructured, m mode) {
	t.Helper()
	args, _, _ := unstructured.NestedSlice(container(t, find(objs, "Deployment", "plexus-controller"), "controller"), "args")
	selfManaged := slices.Contains(args, any("--certs-mode=self-managed"))
	webhookCert, extenderCert := find(objs, "Certificate", "plexus-webhook"), find(objs, "Certificate", "plexus-extender")
	switch m.certs {
	case "self-managed":
		if !selfManaged || webhookCert != nil {
			t.Errorf("self-managed: controller args %v, Certificate rendered %v", args, webhookCert != nil)
		}
		if withExtender := slices.Contains(args, any("--certs-extender-service=plexus-extender")); withExtender != (m.scheduler == "extender-only") {
			t.Errorf("the controller issues an extender certificate: %v in scheduler mode %s", withExtender, m.scheduler)
		}
	case "cert-manager":
		if selfManaged || webhookCert == nil {
			t.Fatalf("cert-manager: controller self-managed %v, webhook Certificate %v", selfManaged, webhookCert != nil)
		}
		if s, _, _ := unstructured.NestedString(webhookCert.Object, "spec", "secretName"); s != "plexus-webhook-tls" {
			t.Errorf("the webhook Certificate writes Secret %q", s)
		}
		if (extenderCert != nil) != (m.scheduler == "extender-only") {
			t.Errorf("extender Certificate rendered %v in scheduler mode %s", extenderCert != nil, m.scheduler)
		}
	}
}

func checkDevicePlugin(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	cm := find(objs, "ConfigMap", "plexus-deviceplugin")
	if cm == nil {
		t.Fatal("no device plugin ConfigMap")
	}
	raw, _, _ := unstructured.NestedString(cm.Object, "data", "config.json")
	cfg, err := dpconfig.Parse([]byte(raw), "intel.com")
	if err != nil {
		t.Fatalf("the device plugin does not accept the rendered resourceList: %v\n%s", err, raw)
	}
	if len(cfg.ResourceList) != 1 || cfg.ResourceList[0].ResourceName != "sriov_netdevice" {
		t.Errorf("resourceList = %+v", cfg.ResourceList)
	}
}

func container(t *testing.T, workload *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	if workload == nil {
		t.Fatalf("no workload holding container %s", name)
	}
	cs, _, _ := unstructured.NestedSlice(workload.Object, "spec", "template", "spec", "containers")
	for _, c := range cs {
		if c.(map[string]any)["name"] == name {
			return c.(map[string]any)
		}
	}
	t.Fatalf("%s has no container %s", workload.GetName(), name)
	return nil
}

func nestedSlice(obj map[string]any, fields ...string) ([]any, bool, error) {
	return unstructured.NestedSlice(obj, fields...)
}
