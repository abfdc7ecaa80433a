package app

import (
	"bytes"
	"strings"
	"testing"
	"time"

	schedulerconfigv1 "k8s.io/kube-scheduler/config/v1"
	"sigs.k8s.io/yaml"
)

func TestStanzaYAML(t *testing.T) {
	e := Extender(StanzaOptions{URLPrefix: URLPrefix("", 10262, false), NodeCacheCapable: true, ManagedResources: []string{"intel.com/sriov_netdevice"}})
	b, err := StanzaYAML(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"urlPrefix: http://127.0.0.1:10262/", "filterVerb: filter", "prioritizeVerb: prioritize", "bindVerb: bind", "weight: 5",
		"nodeCacheCapable: true", "ignorable: false", "httpTimeout: 5s", "- ignoredByScheduler: false\n    name: intel.com/sriov_netdevice", "kind: KubeSchedulerConfiguration"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("stanza lacks %q:\n%s", want, b)
		}
	}
	// It is a KubeSchedulerConfiguration the scheduler's types read back.
	var cfg schedulerconfigv1.KubeSchedulerConfiguration
	if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Extenders) != 1 || cfg.Extenders[0].HTTPTimeout.Duration != 5*time.Second || cfg.Extenders[0].ManagedResources[0].Name != "intel.com/sriov_netdevice" {
		t.Fatalf("read back: %+v", cfg.Extenders)
	}
	if e := Extender(StanzaOptions{URLPrefix: "https://x:1/", CAFile: "/ca.pem"}); !e.EnableHTTPS || e.TLSConfig.CAFile != "/ca.pem" {
		t.Fatalf("https stanza: %+v", e)
	}
}

func TestFlags(t *testing.T) {
	var out, errs bytes.Buffer
	for _, tc := range []struct{ args, want string }{
		{"--vf-placement=random", `--vf-placement="random": use spread or pack`},
		{"--log-format=xml", "--log-format"},
		{"--no-such-flag", "unknown flag"},
	} {
		err := Main(t.Context(), strings.Fields(tc.args), &out, &errs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.args, err, tc.want)
		}
	}
}
