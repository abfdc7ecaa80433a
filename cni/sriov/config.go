package sriov

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-project/plexus/cni/sriov/pf"
)

// netConf is the network configuration as sriov-cni reads it.
type netConf struct {
	types.NetConf
	DeviceID  string  `json:"deviceID"`
	PCIBusID  string  `json:"pciBusID"` // what Multus injects beside deviceID
	VLAN      *int    `json:"vlan"`
	VLANQoS   *int    `json:"vlanQoS"`
	VLANProto *string `json:"vlanProto"`
	MAC       string  `json:"mac"`
	SpoofChk  string  `json:"spoofchk"`
	Trust     string  `json:"trust"`
	LinkState string  `json:"link_state"`
	MinTxRate *int    `json:"min_tx_rate"`
	MaxTxRate *int    `json:"max_tx_rate"`
	MTU       *int    `json:"mtu"`

	RuntimeConfig struct {
		DeviceID string `json:"deviceID"`
		MAC      string `json:"mac"`
	} `json:"runtimeConfig"`
}

// Config is a parsed, validated configuration of one attachment.
type Config struct {
	// CNIVersion and Name are the network's.
	CNIVersion, Name string
	// IPAMType is the IPAM plugin to delegate to, "" for none.
	IPAMType string
	// DeviceID is the VF's PCI address.
	DeviceID string
	// PF are the settings ADD applies through the PF (only those the config names).
	PF pf.Settings
	// MAC is the MAC address the VF's netdev gets ("" to keep its own).
	MAC string
	// MTU is the MTU the VF's netdev gets (0 to keep its own).
	MTU int
	// PrevResult is the result of ADD, on CHECK.
	PrevResult *current.Result
	// Raw is the configuration as received, for the IPAM delegate.
	Raw []byte
}

var pciAddress = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// fieldError names the configuration field at fault, its value and what is allowed.
func fieldError(field string, value any, why string) error {
	return fmt.Errorf("%s: %v %s", field, value, why)
}

// Parse reads an ADD or CHECK configuration (stdin) and CNI_ARGS, and checks every field:
// its errors name the field and the value. It does no I/O.
func Parse(stdin []byte, cniArgs string) (*Config, error) {
	n, c, err := parseBase(stdin, cniArgs)
	if err != nil {
		return nil, err
	}
	if c.DeviceID != "" && !pciAddress.MatchString(c.DeviceID) {
		return nil, fieldError("deviceID", fmt.Sprintf("%q", c.DeviceID), "is not a PCI address like 0000:3b:02.0")
	}
	if c.DeviceID == "" {
		return nil, fmt.Errorf(`deviceID: missing: the VF's PCI address comes from the "deviceID" field or runtime capability, which the meta-plugin fills from the device plugin's allocation`)
	}
	if err := vlanSettings(n, &c.PF); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name, value string
		dst         **bool
	}{{"spoofchk", n.SpoofChk, &c.PF.SpoofChk}, {"trust", n.Trust, &c.PF.Trust}} {
		switch strings.ToLower(f.value) {
		case "":
		case "on":
			*f.dst = ptr(true)
		case "off":
			*f.dst = ptr(false)
		default:
			return nil, fieldError(f.name, fmt.Sprintf("%q", f.value), `is not "on" or "off"`)
		}
	}
	switch ls := strings.ToLower(n.LinkState); ls {
	case "", pf.LinkStateAuto, pf.LinkStateEnable, pf.LinkStateDisable:
		c.PF.LinkState = ls
	default:
		return nil, fieldError("link_state", fmt.Sprintf("%q", n.LinkState), `is not "auto", "enable" or "disable"`)
	}
	if err := rateSettings(n, &c.PF); err != nil {
		return nil, err
	}
	if c.MAC != "" {
		mac, err := pf.NormalizeMAC(c.MAC)
		if err != nil {
			return nil, fmt.Errorf("mac: %w", err)
		}
		c.MAC, c.PF.MAC = mac, mac
	}
	if n.MTU != nil {
		if *n.MTU < 68 || *n.MTU > 65535 {
			return nil, fieldError("mtu", *n.MTU, "is out of range 68-65535")
		}
		c.MTU = *n.MTU
	}
	if n.RawPrevResult != nil {
		if err := version.ParsePrevResult(&n.NetConf); err != nil {
			return nil, fmt.Errorf("prevResult: %w", err)
		}
		r, err := current.NewResultFromResult(n.PrevResult)
		if err != nil {
			return nil, fmt.Errorf("prevResult: %w", err)
		}
		c.PrevResult = r
	}
	return c, nil
}

// ParseForDel reads a DEL configuration: only what DEL needs (the version, the IPAM type and the
// device ID when present), since DEL must undo an attachment even when the configuration
// changed since ADD or was never valid.
func ParseForDel(stdin []byte, cniArgs string) (*Config, error) {
	_, c, err := parseBase(stdin, cniArgs)
	if err != nil {
		return nil, err
	}
	if !pciAddress.MatchString(c.DeviceID) {
		c.DeviceID = "" // no ADD attached it: the cache decides
	}
	return c, nil
}

func parseBase(stdin []byte, cniArgs string) (*netConf, *Config, error) {
	var n netConf
	if err := json.Unmarshal(stdin, &n); err != nil {
		return nil, nil, fmt.Errorf("parsing the network configuration: %w", err)
	}
	c := &Config{CNIVersion: n.CNIVersion, Name: n.Name, IPAMType: n.IPAM.Type, Raw: stdin}
	c.DeviceID = n.DeviceID
	if c.DeviceID == "" {
		c.DeviceID = n.RuntimeConfig.DeviceID
	}
	if c.DeviceID == "" {
		c.DeviceID = n.PCIBusID
	}
	c.DeviceID = strings.ToLower(c.DeviceID)
	// The most specific MAC wins: the runtime capability, then CNI_ARGS, then the config.
	c.MAC = n.MAC
	if m := argValue(cniArgs, "MAC"); m != "" {
		c.MAC = m
	}
	if n.RuntimeConfig.MAC != "" {
		c.MAC = n.RuntimeConfig.MAC
	}
	return &n, c, nil
}

func vlanSettings(n *netConf, s *pf.Settings) error {
	if n.VLAN == nil {
		if n.VLANQoS != nil || n.VLANProto != nil {
			return fieldError("vlanQoS/vlanProto", "set", "need vlan")
		}
		return nil
	}
	v := pf.VLAN{ID: *n.VLAN, Proto: pf.Proto8021Q}
	if v.ID < 0 || v.ID > 4094 {
		return fieldError("vlan", v.ID, "is out of range 0-4094")
	}
	if n.VLANQoS != nil {
		v.QoS = *n.VLANQoS
		if v.QoS < 0 || v.QoS > 7 {
			return fieldError("vlanQoS", v.QoS, "is out of range 0-7")
		}
		if v.QoS != 0 && v.ID == 0 {
			return fieldError("vlanQoS", v.QoS, "needs a vlan other than 0")
		}
	}
	if n.VLANProto != nil {
		switch p := strings.ToLower(*n.VLANProto); p {
		case pf.Proto8021Q:
		case pf.Proto8021AD:
			if v.ID == 0 {
				return fieldError("vlanProto", fmt.Sprintf("%q", *n.VLANProto), "needs a vlan other than 0")
			}
			v.Proto = p
		default:
			return fieldError("vlanProto", fmt.Sprintf("%q", *n.VLANProto), `is not "802.1q" or "802.1ad"`)
		}
	}
	s.VLAN = &v
	return nil
}

func rateSettings(n *netConf, s *pf.Settings) error {
	if n.MinTxRate == nil && n.MaxTxRate == nil {
		return nil
	}
	var r pf.Rate
	if n.MinTxRate != nil {
		if r.Min = *n.MinTxRate; r.Min < 0 {
			return fieldError("min_tx_rate", r.Min, "is negative (Mbps, 0 for no minimum)")
		}
	}
	if n.MaxTxRate != nil {
		if r.Max = *n.MaxTxRate; r.Max < 0 {
			return fieldError("max_tx_rate", r.Max, "is negative (Mbps, 0 for no limit)")
		}
	}
	if r.Max != 0 && r.Max < r.Min {
		return fieldError("max_tx_rate", r.Max, fmt.Sprintf("is below min_tx_rate %d", r.Min))
	}
	s.Rate = &r
	return nil
}

// argValue is the value of key in CNI_ARGS ("K1=V1;K2=V2"), "" when absent.
func argValue(args, key string) string {
	for _, kv := range strings.Split(args, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }
