package sriov

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/plexus-project/plexus/cni/sriov/pf"
)

// Check verifies the attachment against the configuration and the ADD result: the VF is
// recorded for this container, its netdev is in the netns under CNI_IFNAME, up, with the MAC,
// MTU and addresses ADD gave it, and the PF holds the configured settings. Every difference
// is named in the error.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	cfg, err := Parse(args.StdinData, args.Args)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	if cfg.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "prevResult: missing: CHECK needs the result of ADD", "")
	}
	return p.run(args, func(ctx context.Context, n *node) error {
		unlock, err := n.store.Lock(ctx, cfg.DeviceID)
		if err != nil {
			return types.NewError(types.ErrTryAgainLater, err.Error(), "")
		}
		defer unlock()
		rec, err := n.store.Load(cfg.DeviceID)
		if err != nil {
			return types.NewError(types.ErrIOFailure, err.Error(), "")
		}
		if rec == nil || rec.Phase != PhaseAdded {
			return types.NewError(types.ErrInternal, fmt.Sprintf("deviceID %s: no completed attachment is recorded for it", cfg.DeviceID), "")
		}
		if rec.Owner.ContainerID != args.ContainerID || rec.Owner.IfName != args.IfName {
			return types.NewError(types.ErrInternal, fmt.Sprintf("deviceID %s: attached to container %s as %s, not to this one",
				cfg.DeviceID, rec.Owner.ContainerID, rec.Owner.IfName), "")
		}
		var problems []string
		if !cfg.PF.Empty() {
			have, err := n.pf.Get(ctx, rec.PF, rec.VFIndex)
			if err != nil {
				return types.NewError(types.ErrIOFailure, err.Error(), "")
			}
			problems = append(problems, pf.Diff(cfg.PF, have)...)
		}
		if !rec.Userspace {
			ps, err := checkNetdev(args, rec, cfg.PrevResult)
			if err != nil {
				return types.NewError(types.ErrInvalidNetNS, err.Error(), "")
			}
			problems = append(problems, ps...)
		}
		if len(problems) > 0 {
			return types.NewError(types.ErrInternal, fmt.Sprintf("CHECK of VF %s (%s in %s): %s",
				cfg.DeviceID, args.IfName, args.Netns, strings.Join(problems, "; ")), "")
		}
		if cfg.IPAMType != "" {
			return n.ipam.Check(ctx, cfg.IPAMType, cfg.Raw)
		}
		return nil
	})
}

// checkNetdev lists how the netdev in the pod differs from what ADD set up.
func checkNetdev(args *skel.CmdArgs, rec *Record, prev *current.Result) ([]string, error) {
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", args.Netns, err)
	}
	defer netns.Close()
	var problems []string
	err = netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(args.IfName)
		if err != nil {
			problems = append(problems, fmt.Sprintf("interface %s: missing in the netns", args.IfName))
			return nil
		}
		have := linkState(l)
		if !strings.EqualFold(have.MAC, rec.Pod.MAC) {
			problems = append(problems, fmt.Sprintf("mac: want %s, have %s", rec.Pod.MAC, have.MAC))
		}
		if have.MTU != rec.Pod.MTU {
			problems = append(problems, fmt.Sprintf("mtu: want %d, have %d", rec.Pod.MTU, have.MTU))
		}
		if !have.Up {
			problems = append(problems, fmt.Sprintf("interface %s: down", args.IfName))
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, ip := range prev.IPs {
			if ip.Interface != nil && (*ip.Interface < 0 || *ip.Interface >= len(prev.Interfaces) || prev.Interfaces[*ip.Interface].Name != args.IfName) {
				continue
			}
			if !hasAddr(addrs, ip.Address) {
				problems = append(problems, fmt.Sprintf("address %s: missing on %s", ip.Address.String(), args.IfName))
			}
		}
		return nil
	})
	return problems, err
}

func hasAddr(addrs []netlink.Addr, want net.IPNet) bool {
	for _, a := range addrs {
		if a.IPNet != nil && a.IP.Equal(want.IP) && a.Mask.String() == want.Mask.String() {
			return true
		}
	}
	return false
}
