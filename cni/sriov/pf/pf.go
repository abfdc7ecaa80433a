package pf

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// PF names a physical function: its netdev (what netlink needs) and PCI address (what a
// sysfs-backed backend needs).
type PF struct {
	Name string
	PCI  string
}

// VLAN protocols.
const (
	Proto8021Q  = "802.1q"
	Proto8021AD = "802.1ad"
)

// Link states of a VF as the PF reports it to the VF.
const (
	LinkStateAuto    = "auto"
	LinkStateEnable  = "enable"
	LinkStateDisable = "disable"
)

// VLAN is a VF's port VLAN: ID 0 means none.
type VLAN struct {
	ID    int    `json:"id"`
	QoS   int    `json:"qos"`
	Proto string `json:"proto"`
}

// Rate is a VF's transmit rate limits in Mbps; 0 means no limit.
type Rate struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// Settings are a VF's settings in its PF. In a change, a nil field is left as it is; Backend.Get
// fills every field.
type Settings struct {
	VLAN      *VLAN  `json:"vlan,omitempty"`
	MAC       string `json:"mac,omitempty"` // the administrative MAC, "" to leave it
	SpoofChk  *bool  `json:"spoofchk,omitempty"`
	Trust     *bool  `json:"trust,omitempty"`
	LinkState string `json:"linkState,omitempty"` // "" to leave it
	Rate      *Rate  `json:"rate,omitempty"`
}

// Empty reports whether s changes nothing.
func (s Settings) Empty() bool {
	return s.VLAN == nil && s.MAC == "" && s.SpoofChk == nil && s.Trust == nil && s.LinkState == "" && s.Rate == nil
}

// Only returns the fields of s that are set in mask: what to restore of a VF's former settings
// s after a change mask.
func (s Settings) Only(mask Settings) Settings {
	var out Settings
	if mask.VLAN != nil {
		out.VLAN = s.VLAN
	}
	if mask.MAC != "" {
		out.MAC = s.MAC
	}
	if mask.SpoofChk != nil {
		out.SpoofChk = s.SpoofChk
	}
	if mask.Trust != nil {
		out.Trust = s.Trust
	}
	if mask.LinkState != "" {
		out.LinkState = s.LinkState
	}
	if mask.Rate != nil {
		out.Rate = s.Rate
	}
	return out
}

// Diff lists, as "field: want X, have Y", every field set in want that differs in have (a
// complete Settings as Get returns).
func Diff(want, have Settings) []string {
	var out []string
	add := func(field string, w, h any) { out = append(out, fmt.Sprintf("%s: want %v, have %v", field, w, h)) }
	if want.VLAN != nil && (have.VLAN == nil || *want.VLAN != *have.VLAN) {
		add("vlan", fmtVLAN(want.VLAN), fmtVLAN(have.VLAN))
	}
	if want.MAC != "" && !strings.EqualFold(want.MAC, have.MAC) {
		add("mac", want.MAC, have.MAC)
	}
	if want.SpoofChk != nil && (have.SpoofChk == nil || *want.SpoofChk != *have.SpoofChk) {
		add("spoofchk", onOff(want.SpoofChk), onOff(have.SpoofChk))
	}
	if want.Trust != nil && (have.Trust == nil || *want.Trust != *have.Trust) {
		add("trust", onOff(want.Trust), onOff(have.Trust))
	}
	if want.LinkState != "" && want.LinkState != have.LinkState {
		add("link_state", want.LinkState, have.LinkState)
	}
	if want.Rate != nil && (have.Rate == nil || *want.Rate != *have.Rate) {
		add("rate", fmtRate(want.Rate), fmtRate(have.Rate))
	}
	return out
}

func fmtVLAN(v *VLAN) string {
	if v == nil {
		return "unknown"
	}
	return fmt.Sprintf("%d qos %d proto %s", v.ID, v.QoS, v.Proto)
}

func fmtRate(r *Rate) string {
	if r == nil {
		return "unknown"
	}
	return fmt.Sprintf("min %d max %d Mbps", r.Min, r.Max)
}

func onOff(b *bool) string {
	switch {
	case b == nil:
		return "unknown"
	case *b:
		return "on"
	}
	return "off"
}

// Backend reads and changes the settings a PF holds for its VFs. Implementations must be safe
// for concurrent use on different VFs; the caller serializes calls on one VF.
type Backend interface {
	// Get returns every setting of VF index vf of p.
	Get(ctx context.Context, p PF, vf int) (Settings, error)
	// Set applies the non-nil fields of s to VF index vf of p, in the order a NIC accepts them
	// (VLAN, MAC, rate, spoof checking, trust, link state); it stops at the first failure and
	// says which setting failed.
	Set(ctx context.Context, p PF, vf int, s Settings) error
}

// NormalizeMAC returns mac in the lowercase colon form, or an error naming it.
func NormalizeMAC(mac string) (string, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not an Ethernet MAC address (want six hex octets like 02:00:00:00:00:01)", mac)
	}
	return hw.String(), nil
}
