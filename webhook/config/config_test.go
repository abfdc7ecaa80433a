package config

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

func TestMutating(t *testing.T) {
	m := Mutating(Options{URL: "https://127.0.0.1:9443/", CABundle: []byte("ca"), TimeoutSeconds: 3})
	w := m.Webhooks[0]
	if m.Name != "plexus-webhook" || w.Name != MutatePods {
		t.Errorf("names: %s %s", m.Name, w.Name)
	}
	if *w.ClientConfig.URL != "https://127.0.0.1:9443/mutate" || string(w.ClientConfig.CABundle) != "ca" || w.ClientConfig.Service != nil {
		t.Errorf("clientConfig = %+v", w.ClientConfig)
	}
	if *w.SideEffects != admissionregistrationv1.SideEffectClassNone || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy ||
		*w.TimeoutSeconds != 3 || *w.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("policies: %+v", w)
	}
	req := w.NamespaceSelector.MatchExpressions[0]
	if req.Key != "kubernetes.io/metadata.name" || req.Operator != "NotIn" || len(req.Values) != 2 || req.Values[0] != "kube-system" || req.Values[1] != "plexus-system" {
		t.Errorf("namespaceSelector = %+v", req)
	}
	if len(w.MatchConditions) != 1 || w.MatchConditions[0].Expression != HasNetworksExpression {
		t.Errorf("matchConditions = %+v", w.MatchConditions)
	}
}

func TestValidatingService(t *testing.T) {
	v := Validating(Options{Namespace: "plexus", ExcludedNamespaces: []string{"monitoring"}})
	if len(v.Webhooks) != 3 || v.Webhooks[0].Name != ValidatePods || v.Webhooks[1].Name != ValidateNADs || v.Webhooks[2].Name != ValidatePodUpdates {
		t.Fatalf("webhooks = %+v", v.Webhooks)
	}
	for _, w := range v.Webhooks {
		s := w.ClientConfig.Service
		if s == nil || s.Namespace != "plexus" || s.Name != "plexus-webhook" || *s.Path != "/validate" || *s.Port != 443 {
			t.Errorf("%s service = %+v", w.Name, s)
		}
		if got := w.NamespaceSelector.MatchExpressions[0].Values; len(got) != 3 || got[2] != "monitoring" {
			t.Errorf("%s excluded = %v", w.Name, got)
		}
	}
	if len(v.Webhooks[1].MatchConditions) != 0 || len(v.Webhooks[1].Rules[0].Operations) != 3 {
		t.Errorf("NAD webhook = %+v", v.Webhooks[1])
	}
	if u := v.Webhooks[2]; len(u.Rules[0].Operations) != 1 || u.Rules[0].Operations[0] != "UPDATE" || u.MatchConditions[0].Expression != NetworksChangedExpression {
		t.Errorf("pod update webhook = %+v", u)
	}
	SetCABundle([]byte("x"), nil, v)
	if string(v.Webhooks[1].ClientConfig.CABundle) != "x" {
		t.Error("SetCABundle")
	}
}
