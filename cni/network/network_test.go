package network

import (
	"reflect"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func nad(name, config string, annotations map[string]string) *nadv1.NetworkAttachmentDefinition {
	return &nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: annotations},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: config},
	}
}

func TestFromNAD(t *testing.T) {
	tests := []struct {
		name          string
		nad           *nadv1.NetworkAttachmentDefinition
		wantTypes     []string
		wantConfName  string
		wantResource  string
		wantIPAMType  string
		wantIPAMIn    string
		wantSelector  map[string]string
		wantCNIVerson string
	}{
		{
			name: "single plugin without a name gets the NAD's",
			nad: nad("sriov-n3", `{"cniVersion":"1.0.0","type":"plexus-sriov","vlan":100,"ipam":{"type":"plexus-ipam","range":"10.3.0.0/24"}}`,
				map[string]string{ResourceNameAnnotation: "intel.com/sriov_netdevice"}),
			wantTypes: []string{"plexus-sriov"}, wantConfName: "sriov-n3", wantResource: "intel.com/sriov_netdevice",
			wantIPAMType: "plexus-ipam", wantIPAMIn: `"range":"10.3.0.0/24"`, wantCNIVerson: "1.0.0",
		},
		{
			name: "conflist keeps its name and order",
			nad: nad("macvlan-n4", `{"cniVersion":"0.3.1","name":"n4","plugins":[{"type":"macvlan","master":"eth0","ipam":{"type":"host-local","subnet":"10.4.0.0/24"}},{"type":"tuning"}]}`,
				map[string]string{NodeSelectorAnnotation: "plexus.io/n4=true,zone=a"}),
			wantTypes: []string{"macvlan", "tuning"}, wantConfName: "n4", wantIPAMType: "host-local", wantIPAMIn: `"subnet":"10.4.0.0/24"`,
			wantSelector: map[string]string{"plexus.io/n4": "true", "zone": "a"}, wantCNIVerson: "0.3.1",
		},
		{
			name:      "no IPAM, JSON node selector",
			nad:       nad("bridge", `{"type":"bridge","bridge":"br0"}`, map[string]string{NodeSelectorAnnotation: `{"kubernetes.io/hostname":"node-1"}`}),
			wantTypes: []string{"bridge"}, wantConfName: "bridge", wantSelector: map[string]string{"kubernetes.io/hostname": "node-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := FromNAD(tt.nad)
			if err != nil {
				t.Fatal(err)
			}
			if n.Key() != "ns/"+tt.nad.Name {
				t.Errorf("Key = %q", n.Key())
			}
			if !reflect.DeepEqual(n.Types, tt.wantTypes) {
				t.Errorf("Types = %v, want %v", n.Types, tt.wantTypes)
			}
			if n.Config.Name != tt.wantConfName {
				t.Errorf("Config.Name = %q, want %q", n.Config.Name, tt.wantConfName)
			}
			if n.Config.CNIVersion != tt.wantCNIVerson {
				t.Errorf("Config.CNIVersion = %q, want %q", n.Config.CNIVersion, tt.wantCNIVerson)
			}
			if n.ResourceName != tt.wantResource {
				t.Errorf("ResourceName = %q, want %q", n.ResourceName, tt.wantResource)
			}
			switch {
			case tt.wantIPAMType == "" && n.IPAM != nil:
				t.Errorf("IPAM = %+v, want none", n.IPAM)
			case tt.wantIPAMType != "" && (n.IPAM == nil || n.IPAM.Type != tt.wantIPAMType || !strings.Contains(string(n.IPAM.Raw), tt.wantIPAMIn)):
				t.Errorf("IPAM = %+v, want type %s with %s", n.IPAM, tt.wantIPAMType, tt.wantIPAMIn)
			}
			if !reflect.DeepEqual(n.NodeSelector, tt.wantSelector) {
				t.Errorf("NodeSelector = %v, want %v", n.NodeSelector, tt.wantSelector)
			}
		})
	}
}

func TestFromNADErrors(t *testing.T) {
	tests := []struct {
		name   string
		nad    *nadv1.NetworkAttachmentDefinition
		wantIn []string
	}{
		{name: "empty config", nad: nad("a", "", nil), wantIn: []string{"ns/a", "spec.config", "empty CNI configuration"}},
		{name: "not JSON", nad: nad("a", "{type: macvlan}", nil), wantIn: []string{"spec.config", "not a JSON object"}},
		{name: "no type", nad: nad("a", `{"cniVersion":"1.0.0","master":"eth0"}`, nil), wantIn: []string{`neither "type" nor "plugins"`}},
		{name: "plugin without type", nad: nad("a", `{"name":"a","plugins":[{"type":"macvlan"},{"mtu":9000}]}`, nil), wantIn: []string{"plugin 2", "type"}},
		{name: "empty plugins", nad: nad("a", `{"name":"a","plugins":[]}`, nil), wantIn: []string{`"plugins" must be a non-empty list`}},
		{name: "resource without domain", nad: nad("a", `{"type":"x"}`, map[string]string{ResourceNameAnnotation: "sriov"}),
			wantIn: []string{"metadata.annotations[k8s.v1.cni.cncf.io/resourceName]", "<domain>/<name>"}},
		{name: "reserved resource domain", nad: nad("a", `{"type":"x"}`, map[string]string{ResourceNameAnnotation: "kubernetes.io/vf"}),
			wantIn: []string{"reserved"}},
		{name: "bad node selector", nad: nad("a", `{"type":"x"}`, map[string]string{NodeSelectorAnnotation: "a=b=c"}),
			wantIn: []string{"nodeSelector", "key=value"}},
		{name: "every problem reported", nad: nad("a", "", map[string]string{ResourceNameAnnotation: "sriov"}),
			wantIn: []string{"spec.config", "resourceName"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromNAD(tt.nad)
			if err == nil {
				t.Fatal("FromNAD succeeded, want an error")
			}
			for _, w := range tt.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if len(ValidateNAD(tt.nad)) == 0 {
				t.Error("ValidateNAD found nothing wrong")
			}
		})
	}
}
