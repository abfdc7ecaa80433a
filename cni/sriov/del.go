package sriov

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// Del detaches: the IPAM delegate releases the attachment's addresses, then the VF gets back
// its name, MAC, MTU and PF settings in the host, from the record ADD wrote, whether or not the
// pod's netns still exists. A VF handed to another attachment since is left alone. DEL of an
// attachment that is already gone succeeds.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	cfg, err := ParseForDel(args.StdinData, args.Args)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	return p.run(args, func(ctx context.Context, n *node) error {
		pci, err := n.store.Attachment(args.ContainerID, args.IfName)
		if err != nil {
			return types.NewError(types.ErrIOFailure, err.Error(), "")
		}
		if pci == "" {
			pci = cfg.DeviceID
		}
		// The VF first: its restore needs nothing but this node, so an unreachable IPAM backend
		// never keeps a VF from its next pod. Then the addresses, this attachment's own whoever
		// has the VF now; a failure of either is returned, and the runtime's retry redoes only
		// what is left.
		vfErr := n.releaseVF(ctx, args, pci)
		var ipamErr error
		if cfg.IPAMType != "" {
			if err := n.ipam.Del(ctx, cfg.IPAMType, cfg.Raw); err != nil {
				ipamErr = fmt.Errorf("IPAM %s: %w", cfg.IPAMType, err)
			}
		}
		if vfErr != nil {
			return vfErr
		}
		return ipamErr
	})
}

// releaseVF restores the VF of the attachment, if it still has it.
func (n *node) releaseVF(ctx context.Context, args *skel.CmdArgs, pci string) error {
	if pci == "" {
		return nil
	}
	unlock, err := n.store.Lock(ctx, pci)
	if err != nil {
		return types.NewError(types.ErrTryAgainLater, err.Error(), "")
	}
	defer unlock()
	rec, err := n.store.Load(pci)
	if err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	if rec == nil || rec.Owner.ContainerID != args.ContainerID || rec.Owner.IfName != args.IfName {
		if rec != nil {
			n.log.Info("the VF belongs to another attachment now; leaving it", "deviceID", pci,
				"owner", rec.Owner.ContainerID, "ownerIfName", rec.Owner.IfName)
		}
		if err := n.store.RemoveAttachment(args.ContainerID, args.IfName); err != nil {
			return types.NewError(types.ErrIOFailure, err.Error(), "")
		}
		return nil
	}
	sysfsName := ""
	if vf, err := n.fs.LookupVF(pci); err == nil {
		sysfsName = vf.NetName
	}
	if err := n.restore(ctx, rec, sysfsName); err != nil {
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("deviceID %s: restoring the VF: %v", pci, err), "")
	}
	if err := n.forget(rec); err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	n.log.V(1).Info("VF released", "deviceID", pci, "netdev", rec.Host.Name)
	return nil
}
