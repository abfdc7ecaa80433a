package pf

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// Netlink is the production Backend: it reads the PF's IFLA_VFINFO_LIST and sets IFLA_VF_*
// attributes through the PF netdev in the caller's network namespace (the host's).
type Netlink struct{}

var _ Backend = Netlink{}

// ETH_P_8021Q and ETH_P_8021AD, the VLAN protocol numbers the kernel takes.
const (
	ethP8021Q  = 0x8100
	ethP8021AD = 0x88a8
)

var linkStates = map[string]uint32{
	LinkStateAuto: nl.IFLA_VF_LINK_STATE_AUTO, LinkStateEnable: nl.IFLA_VF_LINK_STATE_ENABLE, LinkStateDisable: nl.IFLA_VF_LINK_STATE_DISABLE,
}

func (Netlink) link(p PF) (netlink.Link, error) {
	l, err := netlink.LinkByName(p.Name)
	if err != nil {
		return nil, fmt.Errorf("PF %s (%s): %w", p.Name, p.PCI, err)
	}
	return l, nil
}

// Get implements Backend.
func (n Netlink) Get(_ context.Context, p PF, vf int) (Settings, error) {
	l, err := n.link(p)
	if err != nil {
		return Settings{}, err
	}
	for _, info := range l.Attrs().Vfs {
		if info.ID != vf {
			continue
		}
		proto := Proto8021Q
		if info.VlanProto == ethP8021AD {
			proto = Proto8021AD
		}
		state := LinkStateAuto
		for name, v := range linkStates {
			if v == info.LinkState {
				state = name
			}
		}
		spoof, trust := info.Spoofchk, info.Trust != 0
		maxRate := int(info.MaxTxRate)
		if maxRate == 0 {
			maxRate = info.TxRate // drivers without IFLA_VF_RATE
		}
		mac := "00:00:00:00:00:00"
		if len(info.Mac) == 6 {
			mac = info.Mac.String()
		}
		return Settings{
			VLAN: &VLAN{ID: info.Vlan, QoS: info.Qos, Proto: proto}, MAC: mac, SpoofChk: &spoof, Trust: &trust,
			LinkState: state, Rate: &Rate{Min: int(info.MinTxRate), Max: maxRate},
		}, nil
	}
	return Settings{}, fmt.Errorf("PF %s (%s) reports no VF %d", p.Name, p.PCI, vf)
}

// Set implements Backend.
func (n Netlink) Set(_ context.Context, p PF, vf int, s Settings) error {
	l, err := n.link(p)
	if err != nil {
		return err
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("setting %s of VF %d on PF %s (%s): %w", what, vf, p.Name, p.PCI, err)
	}
	if s.VLAN != nil {
		proto := ethP8021Q
		if s.VLAN.Proto == Proto8021AD {
			proto = ethP8021AD
		}
		if err := netlink.LinkSetVfVlanQosProto(l, vf, s.VLAN.ID, s.VLAN.QoS, proto); err != nil {
			return fail("vlan", err)
		}
	}
	if s.MAC != "" {
		hw, err := net.ParseMAC(s.MAC)
		if err != nil {
			return fail("mac", err)
		}
		if err := netlink.LinkSetVfHardwareAddr(l, vf, hw); err != nil {
			return fail("mac", err)
		}
	}
	if s.Rate != nil {
		if err := netlink.LinkSetVfRate(l, vf, s.Rate.Min, s.Rate.Max); err != nil {
			return fail("min_tx_rate/max_tx_rate", err)
		}
	}
	if s.SpoofChk != nil {
		if err := netlink.LinkSetVfSpoofchk(l, vf, *s.SpoofChk); err != nil {
			return fail("spoofchk", err)
		}
	}
	if s.Trust != nil {
		if err := netlink.LinkSetVfTrust(l, vf, *s.Trust); err != nil {
			return fail("trust", err)
		}
	}
	if s.LinkState != "" {
		st, ok := linkStates[s.LinkState]
		if !ok {
			return fail("link_state", fmt.Errorf("unknown state %q", s.LinkState))
		}
		if err := netlink.LinkSetVfState(l, vf, st); err != nil {
			return fail("link_state", err)
		}
	}
	return nil
}
