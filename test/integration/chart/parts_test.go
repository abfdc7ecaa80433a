package chart

import (
	"strings"
	"testing"
)

// TestParts: each component can be left out (`<component>.enabled: false`, scheduler.mode
// none): its objects are not rendered and the others' are; leaving the webhook out removes its
// webhook configurations (a failurePolicy Fail configuration without its webhook would refuse
// every pod that selects networks) and the controller's certificate duties; leaving
// plexus-controller out while it must issue certificates fails with the reason.
func TestParts(t *testing.T) {
	type obj struct{ kind, name string }
	tests := []struct {
		set     string
		gone    []obj
		kept    []obj
		noArgOf map[string]string // a workload (its container of the same name without plexus-) that must not carry an argument
	}{
		{set: "webhook.enabled=false",
			gone:    []obj{{"Deployment", "plexus-webhook"}, {"Service", "plexus-webhook"}, {"MutatingWebhookConfiguration", "plexus-webhook"}, {"ValidatingWebhookConfiguration", "plexus-webhook"}, {"PodDisruptionBudget", "plexus-webhook"}},
			kept:    []obj{{"Deployment", "plexus-controller"}, {"DaemonSet", "plexus-daemon"}, {"DaemonSet", "plexus-deviceplugin"}, {"Deployment", "plexus-scheduler"}},
			noArgOf: map[string]string{"plexus-controller": "--certs-mode=self-managed"}},
		{set: "daemon.enabled=false",
			gone: []obj{{"DaemonSet", "plexus-daemon"}, {"ServiceAccount", "plexus-daemon"}, {"ClusterRole", "plexus-plexus-daemon"}},
			kept: []obj{{"Deployment", "plexus-webhook"}, {"DaemonSet", "plexus-deviceplugin"}}},
		{set: "devicePlugin.enabled=false",
			gone: []obj{{"DaemonSet", "plexus-deviceplugin"}, {"ConfigMap", "plexus-deviceplugin"}},
			kept: []obj{{"DaemonSet", "plexus-daemon"}}},
		{set: "webhook.enabled=false,controller.enabled=false",
			gone: []obj{{"Deployment", "plexus-controller"}, {"Deployment", "plexus-webhook"}, {"ClusterRole", "plexus-plexus-controller"}},
			kept: []obj{{"DaemonSet", "plexus-daemon"}}},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			objs := objects(t, render(t, "--set", tt.set))
			for _, o := range tt.gone {
				if find(objs, o.kind, o.name) != nil {
					t.Errorf("--set %s still renders %s %s", tt.set, o.kind, o.name)
				}
			}
			for _, o := range tt.kept {
				if find(objs, o.kind, o.name) == nil {
					t.Errorf("--set %s no longer renders %s %s", tt.set, o.kind, o.name)
				}
			}
			for workload, arg := range tt.noArgOf {
				if args := chartArgs(t, objs, workload, strings.TrimPrefix(workload, "plexus-")); strings.Contains(strings.Join(args, " "), arg) {
					t.Errorf("--set %s: %s still runs with %s", tt.set, workload, arg)
				}
			}
			checkLeastPrivilege(t, objs)
			checkIdentities(t, objs)
		})
	}
	out, err := helm(t, "template", "plexus", chartDir(t), "--namespace", namespace, "--set", "controller.enabled=false")
	if err == nil || !strings.Contains(err.Error(), "certs.mode self-managed needs controller.enabled") {
		t.Errorf("the webhook without plexus-controller in self-managed mode: %v\n%.300s", err, out)
	}
}
