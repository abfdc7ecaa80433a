package network

import (
	"encoding/json"
	"net"
	"reflect"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
)

func sel(ns, name, iface string) *Selection {
	return &Selection{NetworkSelectionElement: nadv1.NetworkSelectionElement{Name: name, Namespace: ns, InterfaceRequest: iface}}
}

func TestParseSelections(t *testing.T) {
	cniArgs := map[string]any{"foo": "bar"}
	tests := []struct {
		name       string
		annotation string
		want       []*Selection
	}{
		{name: "empty", annotation: "", want: nil},
		{name: "blank", annotation: "  ", want: nil},
		{name: "name", annotation: "net1", want: []*Selection{sel("pods", "net1", "")}},
		{name: "namespace/name", annotation: "ns1/net1", want: []*Selection{sel("ns1", "net1", "")}},
		{name: "name@iface", annotation: "net1@eth1", want: []*Selection{sel("pods", "net1", "eth1")}},
		{name: "namespace/name@iface", annotation: "ns1/net1@eth0", want: []*Selection{sel("ns1", "net1", "eth0")}},
		{name: "comma list with spaces", annotation: " ns1/net1 , net2@net2 ,net3",
			want: []*Selection{sel("ns1", "net1", ""), sel("pods", "net2", "net2"), sel("pods", "net3", "")}},
		{name: "same network twice", annotation: "sriov-n3,sriov-n3",
			want: []*Selection{sel("pods", "sriov-n3", ""), sel("pods", "sriov-n3", "")}},
		{name: "dotted name", annotation: "net.v1", want: []*Selection{sel("pods", "net.v1", "")}},
		{name: "JSON list with namespaces", annotation: `[{"name":"net1","namespace":"ns1","interface":"eth1"},{"name":"net2"}]`,
			want: []*Selection{sel("ns1", "net1", "eth1"), sel("pods", "net2", "")}},
		{name: "JSON with every field", annotation: `[{"name":"n","ips":["10.1.1.11/24","2001:db8::1"],"mac":"02:00:00:00:00:01",
			"default-route":["10.1.1.1"],"cni-args":{"foo":"bar"},"bandwidth":{"ingressRate":1000,"ingressBurst":10,"egressRate":2000,"egressBurst":20},
			"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"infiniband-guid":"c2:11:22:33:44:55:66:77","container":"app"}]`,
			want: []*Selection{{
				NetworkSelectionElement: nadv1.NetworkSelectionElement{
					Name: "n", Namespace: "pods", IPRequest: []string{"10.1.1.11/24", "2001:db8::1"}, MacRequest: "02:00:00:00:00:01",
					GatewayRequest: []net.IP{net.ParseIP("10.1.1.1")}, CNIArgs: &cniArgs,
					BandwidthRequest:      &nadv1.BandwidthEntry{IngressRate: 1000, IngressBurst: 10, EgressRate: 2000, EgressBurst: 20},
					PortMappingsRequest:   []*nadv1.PortMapEntry{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
					InfinibandGUIDRequest: "c2:11:22:33:44:55:66:77",
				},
				Container: "app",
			}}},
		{name: "empty JSON list", annotation: `[]`, want: nil},
		{name: "15-byte interface", annotation: "net1@abcdefghijklmno", want: []*Selection{sel("pods", "net1", "abcdefghijklmno")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSelections(tt.annotation, "pods")
			if err != nil {
				t.Fatalf("ParseSelections(%q): %v", tt.annotation, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tt.want)
				t.Errorf("ParseSelections(%q)\n got %s\nwant %s", tt.annotation, gj, wj)
			}
		})
	}
}

func TestParseSelectionsErrors(t *testing.T) {
	tests := []struct {
		name       string
		annotation string
		// wantIn are substrings the message must contain: the element and the reason.
		wantIn []string
	}{
		{name: "two slashes", annotation: "ns1/net1/if1", wantIn: []string{`network 1 ("ns1/net1/if1")`, `more than one "/"`, "<namespace>/<name>@<interface>"}},
		{name: "two ats", annotation: "net1@if1@if2", wantIn: []string{`network 1 ("net1@if1@if2")`, `more than one "@"`}},
		{name: "second element bad", annotation: "net1, ns/net2/x", wantIn: []string{`network 2 ("ns/net2/x")`}},
		{name: "empty element", annotation: "net1,,net2", wantIn: []string{"network 2", "remove the extra comma"}},
		{name: "empty interface", annotation: "net1@", wantIn: []string{"empty interface name"}},
		{name: "empty namespace", annotation: "/net1", wantIn: []string{"empty namespace"}},
		{name: "upper-case name", annotation: "Net1", wantIn: []string{`network name "Net1"`, "lowercase"}},
		{name: "bad namespace", annotation: "ns_1/net1", wantIn: []string{`namespace "ns_1"`}},
		{name: "JSON object, not a list", annotation: `{"name":"net1"}`, wantIn: []string{"must be a list", "wrap the object in [ ]"}},
		{name: "not JSON", annotation: `[{"name":"net1"`, wantIn: []string{"not a JSON list"}},
		{name: "JSON element not an object", annotation: `["net1"]`, wantIn: []string{`network 1 ("\"net1\"")`, "not a JSON object"}},
		{name: "JSON without name", annotation: `[{"interface":"eth1"}]`, wantIn: []string{`missing "name"`}},
		{name: "JSON wrong field type", annotation: `[{"name":"n","ips":"10.0.0.1"}]`, wantIn: []string{`field "ips" must be a JSON list`}},
		{name: "interface longer than 15 bytes", annotation: "net1@abcdefghijklmnop", wantIn: []string{`interface name "abcdefghijklmnop"`, "16 bytes long", "at most 15"}},
		{name: "interface with slash (JSON)", annotation: `[{"name":"n","interface":"a/b"}]`, wantIn: []string{`interface name "a/b"`, `"/"`}},
		{name: "interface with colon", annotation: "n@eth0:1", wantIn: []string{`interface name "eth0:1"`}},
		{name: "duplicate interface", annotation: "net1@eth1,net2@eth1", wantIn: []string{`network 2 ("pods/net2@eth1")`, `interface "eth1" is already asked for by network 1`}},
		{name: "duplicate interface JSON", annotation: `[{"name":"a","interface":"x"},{"name":"b","namespace":"o","interface":"x"}]`, wantIn: []string{"network 2", `interface "x" is already asked for`}},
		{name: "bad IP", annotation: `[{"name":"n","ips":["10.0.0.300"]}]`, wantIn: []string{`requested IP "10.0.0.300"`}},
		{name: "bad MAC", annotation: `[{"name":"n","mac":"02:00:00:00:00"}]`, wantIn: []string{`requested MAC "02:00:00:00:00"`}},
		{name: "bad default-route", annotation: `[{"name":"n","default-route":["10.0.0.x"]}]`, wantIn: []string{`"default-route" has an invalid IP address "10.0.0.x"`}},
		{name: "bad infiniband guid", annotation: `[{"name":"n","infiniband-guid":"02:00:00:00:00:01"}]`, wantIn: []string{"64-bit GUID"}},
		{name: "negative bandwidth", annotation: `[{"name":"n","bandwidth":{"ingressRate":-1}}]`, wantIn: []string{"must not be negative"}},
		{name: "bad port", annotation: `[{"name":"n","portMappings":[{"hostPort":1,"containerPort":70000}]}]`, wantIn: []string{"1-65535"}},
		{name: "bad protocol", annotation: `[{"name":"n","portMappings":[{"hostPort":1,"containerPort":2,"protocol":"icmp"}]}]`, wantIn: []string{`protocol "icmp"`}},
		{name: "bad container", annotation: `[{"name":"n","container":"App_1"}]`, wantIn: []string{`container "App_1"`}},
		{name: "every error reported", annotation: "a/b/c,d@e@f", wantIn: []string{"network 1", "network 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSelections(tt.annotation, "pods")
			if err == nil {
				t.Fatalf("ParseSelections(%q) = %v, want an error", tt.annotation, got)
			}
			if _, ok := err.(SelectionErrors); !ok {
				t.Errorf("error is %T, want SelectionErrors", err)
			}
			for _, w := range tt.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseDefaultNetwork(t *testing.T) {
	got, err := ParseDefaultNetwork("kube-system/cluster-net", "pods")
	if err != nil || got.Key() != "kube-system/cluster-net" {
		t.Fatalf("ParseDefaultNetwork = %v, %v", got, err)
	}
	if _, err := ParseDefaultNetwork("a,b", "pods"); err == nil || !strings.Contains(err.Error(), "exactly one network, found 2") {
		t.Errorf("two default networks: error %v", err)
	}
}

func TestSelectionJSONRoundTrip(t *testing.T) {
	in := `[{"name":"n","namespace":"x","interface":"eth1","container":"app"},{"name":"m","namespace":"x"}]`
	sels, err := ParseSelections(in, "x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sels)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseSelections(string(b), "x")
	if err != nil {
		t.Fatalf("re-parsing %s: %v", b, err)
	}
	if !reflect.DeepEqual(sels, again) {
		t.Errorf("round trip changed the selections: %s", b)
	}
}
