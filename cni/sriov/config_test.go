package sriov

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plexus-project/plexus/cni/sriov/pf"
)

func conf(extra string) []byte {
	if extra != "" {
		extra = ", " + extra
	}
	return []byte(`{"cniVersion":"1.0.0","name":"n3","type":"plexus-sriov","deviceID":"0000:3b:02.0"` + extra + `}`)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		stdin   []byte
		args    string
		want    *Config // compared on DeviceID, PF, MAC, MTU, IPAMType
		wantErr string  // substring: the field and the value
	}{
		{name: "minimal", stdin: conf(""), want: &Config{DeviceID: "0000:3b:02.0"}},
		{name: "everything", stdin: conf(`"vlan":100,"vlanQoS":3,"vlanProto":"802.1AD","mac":"02:AA:BB:00:00:01","spoofchk":"off","trust":"on","link_state":"enable","min_tx_rate":10,"max_tx_rate":1000,"mtu":9000,"ipam":{"type":"plexus-ipam"}`),
			want: &Config{DeviceID: "0000:3b:02.0", IPAMType: "plexus-ipam", MAC: "02:aa:bb:00:00:01", MTU: 9000, PF: pf.Settings{
				VLAN: &pf.VLAN{ID: 100, QoS: 3, Proto: pf.Proto8021AD}, MAC: "02:aa:bb:00:00:01", SpoofChk: ptr(false), Trust: ptr(true),
				LinkState: pf.LinkStateEnable, Rate: &pf.Rate{Min: 10, Max: 1000}}}},
		{name: "vlan 0 means untagged", stdin: conf(`"vlan":0`), want: &Config{DeviceID: "0000:3b:02.0", PF: pf.Settings{VLAN: &pf.VLAN{Proto: pf.Proto8021Q}}}},
		{name: "802.1Q in capitals", stdin: conf(`"vlan":5,"vlanProto":"802.1Q"`), want: &Config{DeviceID: "0000:3b:02.0", PF: pf.Settings{VLAN: &pf.VLAN{ID: 5, Proto: pf.Proto8021Q}}}},
		{name: "deviceID from the runtime capability", stdin: []byte(`{"cniVersion":"1.0.0","name":"n","type":"plexus-sriov","runtimeConfig":{"deviceID":"0000:3B:02.1"}}`),
			want: &Config{DeviceID: "0000:3b:02.1"}},
		{name: "deviceID from pciBusID", stdin: []byte(`{"cniVersion":"0.3.1","name":"n","type":"plexus-sriov","pciBusID":"0000:3b:02.2"}`), want: &Config{DeviceID: "0000:3b:02.2"}},
		{name: "CNI_ARGS MAC over the config", stdin: conf(`"mac":"02:00:00:00:00:01"`), args: "IgnoreUnknown=1;MAC=02:00:00:00:00:02",
			want: &Config{DeviceID: "0000:3b:02.0", MAC: "02:00:00:00:00:02", PF: pf.Settings{MAC: "02:00:00:00:00:02"}}},
		{name: "the mac capability over CNI_ARGS", stdin: conf(`"runtimeConfig":{"mac":"02:00:00:00:00:03"}`), args: "MAC=02:00:00:00:00:02",
			want: &Config{DeviceID: "0000:3b:02.0", MAC: "02:00:00:00:00:03", PF: pf.Settings{MAC: "02:00:00:00:00:03"}}},

		{name: "no deviceID", stdin: []byte(`{"cniVersion":"1.0.0","name":"n","type":"plexus-sriov"}`), wantErr: "deviceID: missing"},
		{name: "deviceID not a PCI address", stdin: []byte(`{"cniVersion":"1.0.0","name":"n","type":"plexus-sriov","deviceID":"../../etc"}`), wantErr: `deviceID: "../../etc" is not a PCI address`},
		{name: "vlan 5000", stdin: conf(`"vlan":5000`), wantErr: "vlan: 5000 is out of range 0-4094"},
		{name: "vlan -1", stdin: conf(`"vlan":-1`), wantErr: "vlan: -1 is out of range"},
		{name: "qos without vlan", stdin: conf(`"vlan":0,"vlanQoS":1`), wantErr: "vlanQoS: 1 needs a vlan other than 0"},
		{name: "qos 10", stdin: conf(`"vlan":10,"vlanQoS":10`), wantErr: "vlanQoS: 10 is out of range 0-7"},
		{name: "802.1ad on vlan 0", stdin: conf(`"vlan":0,"vlanProto":"802.1ad"`), wantErr: `vlanProto: "802.1ad" needs a vlan other than 0`},
		{name: "proto 802", stdin: conf(`"vlan":10,"vlanProto":"802"`), wantErr: `vlanProto: "802" is not`},
		{name: "qos with no vlan at all", stdin: conf(`"vlanQoS":1`), wantErr: "need vlan"},
		{name: "spoofchk yes", stdin: conf(`"spoofchk":"yes"`), wantErr: `spoofchk: "yes" is not "on" or "off"`},
		{name: "trust 1", stdin: conf(`"trust":"1"`), wantErr: `trust: "1" is not`},
		{name: "link_state up", stdin: conf(`"link_state":"up"`), wantErr: `link_state: "up" is not`},
		{name: "max rate below min", stdin: conf(`"min_tx_rate":200,"max_tx_rate":100`), wantErr: "max_tx_rate: 100 is below min_tx_rate 200"},
		{name: "negative min rate", stdin: conf(`"min_tx_rate":-5`), wantErr: "min_tx_rate: -5 is negative"},
		{name: "bad mac", stdin: conf(`"mac":"02:00:00:00:00"`), wantErr: `mac: "02:00:00:00:00" is not an Ethernet MAC`},
		{name: "bad CNI_ARGS mac", stdin: conf(""), args: "MAC=zz", wantErr: `mac: "zz"`},
		{name: "mtu 10", stdin: conf(`"mtu":10`), wantErr: "mtu: 10 is out of range"},
		{name: "not JSON", stdin: []byte(`{`), wantErr: "parsing the network configuration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.stdin, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pick := func(c *Config) Config {
				return Config{DeviceID: c.DeviceID, PF: c.PF, MAC: c.MAC, MTU: c.MTU, IPAMType: c.IPAMType}
			}
			if d := cmp.Diff(pick(tc.want), pick(got)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestParseForDelIsLenient(t *testing.T) {
	// DEL must undo an attachment whatever became of the configuration.
	c, err := ParseForDel(conf(`"vlan":9999,"mac":"nonsense","ipam":{"type":"plexus-ipam"}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.DeviceID != "0000:3b:02.0" || c.IPAMType != "plexus-ipam" {
		t.Errorf("got %+v", c)
	}
	c, err = ParseForDel([]byte(`{"cniVersion":"1.0.0","name":"n","type":"plexus-sriov","deviceID":"x/../y"}`), "")
	if err != nil || c.DeviceID != "" {
		t.Errorf("a deviceID that is no PCI address must be ignored on DEL: %+v, %v", c, err)
	}
}

func TestParseCheckPrevResult(t *testing.T) {
	c, err := Parse(conf(`"prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"net1","sandbox":"/var/run/netns/x","pciID":"0000:3b:02.0"}],"ips":[{"address":"10.0.0.2/24","interface":0}]}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.PrevResult == nil || len(c.PrevResult.IPs) != 1 || c.PrevResult.Interfaces[0].PciID != "0000:3b:02.0" {
		t.Fatalf("prevResult %+v", c.PrevResult)
	}
}

func TestParseNodeSettings(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    NodeSettings
		wantErr string
	}{
		{name: "defaults", in: "", want: NodeSettings{SysfsRoot: "/sys", PFBackend: BackendNetlink, StateDir: "/var/lib/cni/plexus-sriov"}},
		{name: "sandbox", in: `{"sysfsRoot":"/var/lib/plexus/sysfs","pfBackend":"recorder","stateDir":"/var/lib/cni/s"}`,
			want: NodeSettings{SysfsRoot: "/var/lib/plexus/sysfs", PFBackend: BackendRecorder, StateDir: "/var/lib/cni/s"}},
		{name: "unknown backend", in: `{"pfBackend":"ioctl"}`, wantErr: `pfBackend "ioctl"`},
		{name: "relative root", in: `{"sysfsRoot":"sys"}`, wantErr: `sysfsRoot "sys" is not an absolute path`},
		{name: "garbage", in: `[`, wantErr: "parsing the node's plexus-sriov settings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseNodeSettings([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
