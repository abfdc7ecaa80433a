package network

import (
	"encoding/json"
	"testing"
)

// FuzzParseSelections checks that no annotation makes the parser panic, and that what it
// accepts survives a JSON round trip unchanged in meaning. The seed corpus is in
// testdata/fuzz/FuzzParseSelections.
func FuzzParseSelections(f *testing.F) {
	for _, seed := range []string{
		"net1", "ns1/net1@eth0", "ns1/net1,net2", "ns1/net1/if1", "net1@if1@if2",
		`[{"name":"n","namespace":"x","interface":"eth1","ips":["10.0.0.1/24"],"mac":"02:00:00:00:00:01"}]`,
		`{"name":"net1"}`, `[{"name":"n","default-route":["10.0.0.1"],"cni-args":{"a":1}}]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, annotation string) {
		sels, err := ParseSelections(annotation, "fuzz")
		if err != nil {
			if err.Error() == "" {
				t.Errorf("empty error message for %q", annotation)
			}
			return
		}
		if len(sels) == 0 {
			return
		}
		ifaces := map[string]bool{}
		for _, s := range sels {
			if s.Name == "" || s.Namespace == "" {
				t.Fatalf("accepted %q with an empty name or namespace: %+v", annotation, s)
			}
			if s.InterfaceRequest != "" {
				if ifaces[s.InterfaceRequest] {
					t.Fatalf("accepted %q with interface %q twice", annotation, s.InterfaceRequest)
				}
				ifaces[s.InterfaceRequest] = true
			}
		}
		b, err := json.Marshal(sels)
		if err != nil {
			t.Fatalf("marshalling what %q parsed to: %v", annotation, err)
		}
		again, err := ParseSelections(string(b), "fuzz")
		if err != nil {
			t.Fatalf("%q parsed, but its JSON form %s does not: %v", annotation, b, err)
		}
		if len(again) != len(sels) {
			t.Fatalf("%q: round trip changed the number of networks", annotation)
		}
	})
}
