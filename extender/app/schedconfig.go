package app

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	schedulerconfigv1 "k8s.io/kube-scheduler/config/v1"
	"sigs.k8s.io/yaml"
)

// StanzaOptions shape the scheduler's extender configuration.
type StanzaOptions struct {
	// URLPrefix is where kube-scheduler reaches the extender, e.g. http://127.0.0.1:10262/.
	URLPrefix string
	// Weight multiplies the extender's 0-10 scores; default 5.
	Weight int64
	// HTTPTimeout bounds one call; default 5s.
	HTTPTimeout time.Duration
	// NodeCacheCapable: the scheduler sends node names only (the extender has its own cache).
	NodeCacheCapable bool
	// ManagedResources are the device resources of the NADs: pods requesting none of them are
	// not sent to the extender. Empty sends every pod.
	ManagedResources []string
	// CAFile, when the URL is HTTPS, is the CA bundle the scheduler verifies the extender with.
	CAFile string
}

// Extender is the scheduler's extender entry for o.
func Extender(o StanzaOptions) schedulerconfigv1.Extender {
	if o.Weight == 0 {
		o.Weight = 5
	}
	if o.HTTPTimeout == 0 {
		o.HTTPTimeout = 5 * time.Second
	}
	e := schedulerconfigv1.Extender{
		URLPrefix:      o.URLPrefix,
		FilterVerb:     "filter",
		PrioritizeVerb: "prioritize",
		// The extender binds the pods it judges, so it learns at once where each went.
		BindVerb:         "bind",
		Weight:           o.Weight,
		HTTPTimeout:      metav1.Duration{Duration: o.HTTPTimeout},
		NodeCacheCapable: o.NodeCacheCapable,
		// A pod the extender cannot judge must wait, not land where its network is absent.
		Ignorable: false,
	}
	if len(o.URLPrefix) > 5 && o.URLPrefix[:5] == "https" {
		e.EnableHTTPS = true
		if o.CAFile != "" {
			e.TLSConfig = &schedulerconfigv1.ExtenderTLSConfig{CAFile: o.CAFile}
		}
	}
	for _, r := range o.ManagedResources {
		e.ManagedResources = append(e.ManagedResources, schedulerconfigv1.ExtenderManagedResource{Name: r, IgnoredByScheduler: false})
	}
	return e
}

// StanzaYAML is a KubeSchedulerConfiguration holding only the extender entry, every field
// written out (ignorable, nodeCacheCapable, ignoredByScheduler even when false).
func StanzaYAML(e schedulerconfigv1.Extender) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["ignorable"] = e.Ignorable
	m["nodeCacheCapable"] = e.NodeCacheCapable
	m["enableHTTPS"] = e.EnableHTTPS
	if mr, ok := m["managedResources"].([]any); ok {
		for _, r := range mr {
			r.(map[string]any)["ignoredByScheduler"] = false
		}
	}
	return yaml.Marshal(map[string]any{
		"apiVersion": schedulerconfigv1.SchemeGroupVersion.String(),
		"kind":       "KubeSchedulerConfiguration",
		"extenders":  []any{m},
	})
}

// URLPrefix is the URL of an extender listening on host:port.
func URLPrefix(host string, port int, https bool) string {
	scheme := "http"
	if https {
		scheme = "https"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("%s://%s/", scheme, net.JoinHostPort(host, strconv.Itoa(port)))
}
