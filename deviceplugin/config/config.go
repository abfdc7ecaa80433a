package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// DefaultResourcePrefix is the resource prefix of entries that set none, as upstream.
const DefaultResourcePrefix = "intel.com"

// DeviceType is the kind of PCI device a pool holds.
type DeviceType string

const (
	// NetDevice pools hold network-class VFs (PCI class 0x02). The default.
	NetDevice DeviceType = "netDevice"
	// Accelerator pools hold processing-accelerator VFs (PCI class 0x12).
	Accelerator DeviceType = "accelerator"
)

// Config is the whole file: {"resourceList": [...]}.
type Config struct {
	ResourceList []ResourceConfig `json:"resourceList"`
}

// ResourceConfig is one pool.
type ResourceConfig struct {
	// ResourceName is the name after the prefix, e.g. sriov_netdevice.
	ResourceName string `json:"resourceName"`
	// ResourcePrefix overrides the global prefix, e.g. intel.com.
	ResourcePrefix string `json:"resourcePrefix,omitempty"`
	// DeviceType is netDevice (default) or accelerator.
	DeviceType DeviceType `json:"deviceType,omitempty"`
	// ExcludeTopology leaves NUMA hints out of ListAndWatch.
	ExcludeTopology bool `json:"excludeTopology,omitempty"`
	// IsRdma at this level is the form of older upstream releases; it applies to every selector.
	IsRdma bool `json:"isRdma,omitempty"`
	// Selectors choose the pool's devices; a device matching any of them is in the pool.
	Selectors Selectors `json:"selectors,omitempty"`
	// AdditionalInfo adds keys to the _INFO environment variable: {"*": {...}} for every device,
	// {"<pci>": {...}} for one (which wins).
	AdditionalInfo map[string]map[string]string `json:"additionalInfo,omitempty"`
	// SelectorObj appears (as null) in some documented upstream examples; it is accepted and
	// kept so the file round-trips, and means nothing.
	SelectorObj json.RawMessage `json:"SelectorObj,omitempty"`
}

// FullName is prefix/name, with prefix defaulting to defaultPrefix.
func (r *ResourceConfig) FullName(defaultPrefix string) string {
	p := r.ResourcePrefix
	if p == "" {
		p = defaultPrefix
	}
	if p == "" {
		p = DefaultResourcePrefix
	}
	return p + "/" + r.ResourceName
}

// Type is DeviceType with its default applied.
func (r *ResourceConfig) Type() DeviceType {
	if r.DeviceType == "" {
		return NetDevice
	}
	return r.DeviceType
}

// NeedVhostNet reports whether any selector asks for /dev/vhost-net.
func (r *ResourceConfig) NeedVhostNet() bool {
	for _, s := range r.Selectors.Items {
		if s.NeedVhostNet {
			return true
		}
	}
	return false
}

// Selectors is the "selectors" value: one object, or a list of objects. List records which
// form was read so that Marshal writes it back the same way.
type Selectors struct {
	Items []Selector
	List  bool
}

// Selector narrows devices; every field set must match.
type Selector struct {
	Vendors      []string `json:"vendors,omitempty"`
	Devices      []string `json:"devices,omitempty"`
	Drivers      []string `json:"drivers,omitempty"`
	PciAddresses []string `json:"pciAddresses,omitempty"`
	PfNames      []string `json:"pfNames,omitempty"`
	RootDevices  []string `json:"rootDevices,omitempty"`
	LinkTypes    []string `json:"linkTypes,omitempty"`
	IsRdma       bool     `json:"isRdma,omitempty"`
	NeedVhostNet bool     `json:"needVhostNet,omitempty"`

	// Upstream fields Plexus rejects when set (see the package doc).
	DDPProfiles []string `json:"ddpProfiles,omitempty"`
	PKeys       []string `json:"pKeys,omitempty"`
	VdpaType    string   `json:"vdpaType,omitempty"`
	AuxTypes    []string `json:"auxTypes,omitempty"`
	AcpiIndexes []string `json:"acpiIndexes,omitempty"`
}

// UnmarshalJSON accepts an object or a list of objects, and rejects unknown keys.
func (s *Selectors) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*s = Selectors{}
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(b, &raws); err != nil {
			return err
		}
		items := make([]Selector, len(raws))
		for i, r := range raws {
			if err := strictDecode(r, &items[i]); err != nil {
				return fmt.Errorf("selectors[%d]: %w", i, err)
			}
		}
		*s = Selectors{Items: items, List: true}
		return nil
	}
	var one Selector
	if err := strictDecode(b, &one); err != nil {
		return fmt.Errorf("selectors: %w", err)
	}
	*s = Selectors{Items: []Selector{one}}
	return nil
}

// MarshalJSON writes the form that was read.
func (s Selectors) MarshalJSON() ([]byte, error) {
	if !s.List && len(s.Items) == 1 {
		return json.Marshal(s.Items[0])
	}
	if s.Items == nil {
		return []byte("null"), nil
	}
	return json.Marshal(s.Items)
}

// IsZero lets omitempty-aware encoders skip an absent selectors key.
func (s Selectors) IsZero() bool { return len(s.Items) == 0 && !s.List }

func strictDecode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// Parse decodes and validates a configuration file. defaultPrefix is the --resource-prefix.
func Parse(data []byte, defaultPrefix string) (*Config, error) {
	var top struct {
		ResourceList []json.RawMessage `json:"resourceList"`
	}
	if err := strictDecode(data, &top); err != nil {
		return nil, fmt.Errorf("device plugin config: %w (expected {\"resourceList\": [...]})", err)
	}
	cfg := &Config{ResourceList: make([]ResourceConfig, len(top.ResourceList))}
	for i, raw := range top.ResourceList {
		if err := strictDecode(raw, &cfg.ResourceList[i]); err != nil {
			var name struct {
				ResourceName string `json:"resourceName"`
			}
			_ = json.Unmarshal(raw, &name)
			return nil, fmt.Errorf("device plugin config: resourceList[%d] (%q): %w", i, name.ResourceName, err)
		}
	}
	if err := Validate(cfg, defaultPrefix); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Marshal writes cfg in the upstream format.
func Marshal(cfg *Config) ([]byte, error) { return json.MarshalIndent(cfg, "", "  ") }

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	prefixRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	hexIDRE  = regexp.MustCompile(`^[0-9a-fA-F]{4}$`)
	pciRE    = regexp.MustCompile(`^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)
)

// Validate checks every entry and names the first bad one.
func Validate(cfg *Config, defaultPrefix string) error {
	seen := map[string]int{}
	for i := range cfg.ResourceList {
		r := &cfg.ResourceList[i]
		where := fmt.Sprintf("device plugin config: resourceList[%d] (%q)", i, r.ResourceName)
		if err := validateEntry(r); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		full := r.FullName(defaultPrefix)
		if j, dup := seen[full]; dup {
			return fmt.Errorf("%s: resource %s is already defined by resourceList[%d]; give one of them another resourceName or resourcePrefix", where, full, j)
		}
		seen[full] = i
	}
	return nil
}

func validateEntry(r *ResourceConfig) error {
	if r.ResourceName == "" {
		return fmt.Errorf("resourceName is required")
	}
	if !nameRE.MatchString(r.ResourceName) || len(r.ResourceName) > 63 {
		return fmt.Errorf("resourceName %q: use letters, digits, '_', '-', '.' (at most 63)", r.ResourceName)
	}
	if r.ResourcePrefix != "" && !prefixRE.MatchString(r.ResourcePrefix) {
		return fmt.Errorf("resourcePrefix %q is not a DNS subdomain such as intel.com", r.ResourcePrefix)
	}
	switch r.Type() {
	case NetDevice, Accelerator:
	default:
		return fmt.Errorf("deviceType %q is not supported: use netDevice or accelerator", r.DeviceType)
	}
	for j := range r.Selectors.Items {
		if err := validateSelector(&r.Selectors.Items[j], r.Type()); err != nil {
			return fmt.Errorf("selectors[%d].%w", j, err)
		}
	}
	return nil
}

func validateSelector(s *Selector, t DeviceType) error {
	for _, v := range s.Vendors {
		if !hexIDRE.MatchString(v) {
			return fmt.Errorf("vendors: %q is not a 4-digit hex PCI vendor ID such as 8086", v)
		}
	}
	for _, v := range s.Devices {
		if !hexIDRE.MatchString(v) {
			return fmt.Errorf("devices: %q is not a 4-digit hex PCI device ID such as 154c", v)
		}
	}
	for _, v := range s.Drivers {
		if v == "" || strings.ContainsAny(v, "/ ") {
			return fmt.Errorf("drivers: %q is not a driver name such as iavf or vfio-pci", v)
		}
	}
	for _, v := range s.PciAddresses {
		if !pciRE.MatchString(v) {
			return fmt.Errorf("pciAddresses: %q is not a PCI address such as 0000:03:02.0", v)
		}
	}
	for _, v := range s.RootDevices {
		if !pciRE.MatchString(v) {
			return fmt.Errorf("rootDevices: %q is not a PCI address such as 0000:03:00.0", v)
		}
	}
	for _, v := range s.PfNames {
		if _, err := ParsePFName(v); err != nil {
			return fmt.Errorf("pfNames: %w", err)
		}
	}
	for _, v := range s.LinkTypes {
		switch strings.ToLower(v) {
		case "ether", "infiniband":
		default:
			return fmt.Errorf("linkTypes: %q is not a link type: use ether or infiniband", v)
		}
	}
	unsupported := map[string]bool{"ddpProfiles": len(s.DDPProfiles) > 0, "pKeys": len(s.PKeys) > 0,
		"vdpaType": s.VdpaType != "", "auxTypes": len(s.AuxTypes) > 0, "acpiIndexes": len(s.AcpiIndexes) > 0}
	for _, k := range []string{"ddpProfiles", "pKeys", "vdpaType", "auxTypes", "acpiIndexes"} {
		if unsupported[k] {
			return fmt.Errorf("%s: not supported by plexus-deviceplugin; remove it or keep sriov-network-device-plugin for this pool", k)
		}
	}
	if t == Accelerator {
		switch {
		case len(s.PfNames) > 0:
			return fmt.Errorf("pfNames: accelerator pools have no netdevs; select by vendors, devices, drivers, pciAddresses or rootDevices")
		case len(s.LinkTypes) > 0:
			return fmt.Errorf("linkTypes: accelerator pools have no netdevs")
		case s.IsRdma || s.NeedVhostNet:
			return fmt.Errorf("isRdma/needVhostNet: only apply to netDevice pools")
		}
	}
	return nil
}

// PFName is a parsed pfNames entry: "ens1f0" (all VFs) or "ens1f0#0-3,5" (VF indexes).
type PFName struct {
	Name string
	// Ranges are inclusive [first, last] VF index ranges; nil means every VF.
	Ranges [][2]int
}

// ParsePFName parses "<pf>[#<i>|<i>-<j>,...]".
func ParsePFName(s string) (PFName, error) {
	name, spec, hasSpec := strings.Cut(s, "#")
	if name == "" {
		return PFName{}, fmt.Errorf("%q: the PF name before '#' is empty", s)
	}
	p := PFName{Name: name}
	if !hasSpec {
		return p, nil
	}
	if spec == "" {
		return PFName{}, fmt.Errorf("%q: '#' must be followed by VF indexes such as 0-3,5", s)
	}
	for _, part := range strings.Split(spec, ",") {
		first, last, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(first)
		if err != nil || a < 0 {
			return PFName{}, fmt.Errorf("%q: %q is not a VF index", s, first)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(last); err != nil || b < 0 {
				return PFName{}, fmt.Errorf("%q: %q is not a VF index", s, last)
			}
			if b < a {
				return PFName{}, fmt.Errorf("%q: range %d-%d ends before it starts", s, a, b)
			}
		}
		p.Ranges = append(p.Ranges, [2]int{a, b})
	}
	return p, nil
}

// Contains reports whether VF index i of PF pf is selected.
func (p PFName) Contains(pf string, i int) bool {
	if p.Name != pf {
		return false
	}
	if p.Ranges == nil {
		return true
	}
	for _, r := range p.Ranges {
		if i >= r[0] && i <= r[1] {
			return true
		}
	}
	return false
}

// NormalizePCI adds the 0000: domain to a short address and lowercases it.
func NormalizePCI(addr string) string {
	addr = strings.ToLower(addr)
	if strings.Count(addr, ":") == 1 {
		return "0000:" + addr
	}
	return addr
}
