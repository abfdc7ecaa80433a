package validate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/ipam/config"
	"github.com/plexus-project/plexus/webhook/nadcache"
)

// FuzzValidateNAD: for any NAD text (name, spec.config, resourceName and nodeSelector
// annotations) validation never panics; every problem sits on a field of the NAD; and a NAD it
// admits is one the cache parses and whose plexus-ipam sections name no host path outside the
// node's Plexus directories.
func FuzzValidateNAD(f *testing.F) {
	for _, c := range []string{
		macvlan, pooled, "", "{", "[]", "null", `{"plugins":[]}`, `{"plugins":[null]}`,
		`{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"plexus-ipam","range":"10.0.0.0/24","log_file":"/etc/x"}}`,
		`{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"whereabouts","configuration_path":["x"]}}`,
		`{"cniVersion":"1.0.0","plugins":[{"type":"a"},{"type":"b","ipam":{"type":"plexus-ipam","ipRanges":[{"range":"fd00::/120"}],"lock_dir":"/run/plexus-ipam/x"}}]}`,
		`{"type":"m","ipam":{"type":"plexus-ipam","range":"10.0.0.1-10.0.0.9/24","exclude":["10.0.0.2/32"],"node_name":"Node_1"}}`,
	} {
		f.Add("net1", c, "intel.com/sriov", "rack=r1")
	}
	f.Add("Bad_Name", macvlan, "sriov", `{"a":"b"}`)
	f.Fuzz(func(t *testing.T, name, cfg, resourceName, nodeSelector string) {
		n := nad(name, cfg, network.ResourceNameAnnotation, resourceName, network.NodeSelectorAnnotation, nodeSelector)
		errs, _ := ValidateNAD(n)
		for _, e := range errs {
			if f := e.Field; !strings.HasPrefix(f, "metadata.") && !strings.HasPrefix(f, "spec.config") {
				t.Fatalf("error on no field of the NAD: %v", e)
			}
		}
		if len(errs) > 0 {
			return
		}
		entry := nadcache.Parse(n)
		if entry.Err != nil {
			t.Fatalf("admitted, but the cache cannot parse it: %v", entry.Err)
		}
		for _, p := range entry.Network.Config.Plugins {
			if !readsIPAM(p.Network.IPAM.Type) {
				continue
			}
			stdin := []byte(`{"name":"n","ipam":` + string(ipamOf(t, p.Bytes)) + `}`)
			var ipam struct {
				IPAM config.IPAM `json:"ipam"`
			}
			if err := json.Unmarshal(stdin, &ipam); err != nil {
				t.Fatalf("admitted an IPAM section that does not parse: %v", err)
			}
			if errs, _ := config.ValidateHostPaths(&ipam.IPAM, nil); len(errs) > 0 {
				t.Fatalf("admitted host paths plexus-ipam refuses: %v", errs)
			}
		}
	})
}

// FuzzHandle: any AdmissionRequest body for a pod or a NAD is answered (never a panic), and a
// pod or NAD whose object does not decode is refused, not admitted.
func FuzzHandle(f *testing.F) {
	f.Add("Pod", "CREATE", `{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/networks":"macvlan-n4"}}}`, "")
	f.Add("Pod", "UPDATE", `{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/networks":"pooled"}}}`, `{"spec":{"nodeName":"n"}}`)
	f.Add("NetworkAttachmentDefinition", "CREATE", `{"metadata":{"name":"x"},"spec":{"config":"{}"}}`, "")
	f.Add("NetworkAttachmentDefinition", "DELETE", "", `{"metadata":{"name":"sriov-n3"}}`)
	f.Add("Pod", "CREATE", `{"metadata":`, "")
	v := New(lookup(), Options{Isolation: &nadcache.Isolation{Shared: []string{"default"}}})
	f.Fuzz(func(t *testing.T, kind, op, obj, old string) {
		req := request(kind, admissionv1.Operation(op), nil, nil)
		req.Object.Raw, req.OldObject.Raw = []byte(obj), []byte(old)
		resp := v.Handle(context.Background(), req)
		if resp.Allowed && (kind == "Pod" || kind == "NetworkAttachmentDefinition") && op == "CREATE" && !decodes(kind, obj) {
			t.Fatalf("admitted a %s that does not decode: %q", kind, obj)
		}
	})
}

func decodes(kind, obj string) bool {
	if kind == "Pod" {
		return json.Unmarshal([]byte(obj), &struct{}{}) == nil
	}
	return json.Unmarshal([]byte(obj), &nadv1.NetworkAttachmentDefinition{}) == nil
}

func ipamOf(t *testing.T, plugin []byte) json.RawMessage {
	var p struct {
		IPAM json.RawMessage `json:"ipam"`
	}
	if err := json.Unmarshal(plugin, &p); err != nil {
		t.Fatal(err)
	}
	return p.IPAM
}
