package sriov

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/plexus-project/plexus/cni/sriov/pf"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
)

// userspaceDrivers are the drivers that give a VF to userspace (DPDK) instead of a netdev.
var userspaceDrivers = map[string]bool{sysfs.VFIODriver: true, "uio_pci_generic": true, "igb_uio": true}

// Add attaches the VF named by deviceID to the container: PF-side settings, the netdev moved
// into the netns as CNI_IFNAME with its MAC, MTU and IPAM addresses, and prints the result.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	cfg, err := Parse(args.StdinData, args.Args)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	return p.run(args, func(ctx context.Context, n *node) error {
		// Bad input is refused before anything is touched.
		vf, err := n.lookupVF(cfg.DeviceID)
		if err != nil {
			return err
		}
		netns, err := ns.GetNS(args.Netns)
		if err != nil {
			return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("netns %s: %v", args.Netns, err), "")
		}
		defer netns.Close()
		unlock, err := n.store.Lock(ctx, cfg.DeviceID)
		if err != nil {
			return types.NewError(types.ErrTryAgainLater, err.Error(), "")
		}
		defer unlock()
		if vf, err = n.takeBack(ctx, args, vf); err != nil {
			return err
		}
		r, err := n.attach(ctx, args, cfg, vf, netns)
		if err != nil {
			n.log.Error(err, "ADD failed; the VF was rolled back", "deviceID", cfg.DeviceID)
			return err
		}
		return types.PrintResult(r, cfg.CNIVersion)
	})
}

// lookupVF finds the VF at pci and refuses one that cannot be attached.
func (n *node) lookupVF(pci string) (sysfs.VF, error) {
	vf, err := n.fs.LookupVF(pci)
	if errors.Is(err, sysfs.ErrNoDevice) || errors.Is(err, sysfs.ErrNotVF) {
		return vf, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("deviceID: %q: %v", pci, err), "")
	}
	if err != nil {
		return vf, types.NewError(types.ErrIOFailure, fmt.Sprintf("deviceID %s: %v", pci, err), "")
	}
	return vf, nil
}

// checkAttachable refuses a VF with no netdev that is not on a userspace driver.
func checkAttachable(vf sysfs.VF) error {
	if vf.NetName == "" && !userspaceDrivers[vf.Driver] {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf(
			"deviceID: %q: the VF has no netdev and its driver %q is not a userspace driver (vfio-pci, uio_pci_generic, igb_uio); bind it to its network driver or to vfio-pci",
			vf.Address, vf.Driver), "")
	}
	return nil
}

// takeBack handles a VF that has a record already: refused while another attachment holds it
// in a live netns; otherwise (its pod's netns died and no DEL came, an ADD crashed, or this
// attachment's ADD is retried) it restores the VF from the record first. It returns the VF as
// sysfs shows it now. The caller holds the VF's lock.
func (n *node) takeBack(ctx context.Context, args *skel.CmdArgs, vf sysfs.VF) (sysfs.VF, error) {
	rec, err := n.store.Load(vf.Address)
	if err != nil {
		return vf, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	if rec == nil {
		return vf, checkAttachable(vf)
	}
	same := rec.Owner.ContainerID == args.ContainerID && rec.Owner.IfName == args.IfName
	if !same && rec.Phase == PhaseAdded && netnsAlive(rec.Owner.Netns) {
		return vf, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf(
			"deviceID: %q: the VF is attached to container %s as %s (netns %s); the device plugin should not have allocated it twice",
			vf.Address, rec.Owner.ContainerID, rec.Owner.IfName, rec.Owner.Netns), "")
	}
	n.log.Info("restoring the VF from its former attachment first", "deviceID", vf.Address,
		"formerContainer", rec.Owner.ContainerID, "formerIfName", rec.Owner.IfName, "phase", rec.Phase)
	if err := n.restore(ctx, rec, vf.NetName); err != nil {
		return vf, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("deviceID %s: restoring it from its former attachment (container %s): %v", vf.Address, rec.Owner.ContainerID, err), "")
	}
	if err := n.forget(rec); err != nil {
		return vf, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	if vf, err = n.lookupVF(vf.Address); err != nil {
		return vf, err
	}
	return vf, checkAttachable(vf)
}

// attach does the changes of ADD, recording first what it will change, and undoes them all
// when one fails.
func (n *node) attach(ctx context.Context, args *skel.CmdArgs, cfg *Config, vf sysfs.VF, netns ns.NetNS) (_ *current.Result, err error) {
	rec := &Record{DeviceID: vf.Address, Owner: Owner{ContainerID: args.ContainerID, IfName: args.IfName, Netns: args.Netns},
		Phase: PhaseAdding, PF: pfOf(vf), VFIndex: vf.Index, Userspace: vf.NetName == ""}
	if !rec.Userspace {
		if rec.Host, err = hostNetdev(vf.NetName); err != nil {
			return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
		}
		rec.Pod = NetdevState{Name: args.IfName, MAC: rec.Host.MAC, MTU: rec.Host.MTU, Up: true}
		if cfg.MAC != "" {
			rec.Pod.MAC = cfg.MAC
		}
		if cfg.MTU != 0 {
			rec.Pod.MTU = cfg.MTU
		}
	}
	if !cfg.PF.Empty() {
		before, err := n.pf.Get(ctx, rec.PF, rec.VFIndex)
		if err != nil {
			return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
		}
		rec.PFBefore, rec.PFApplied = before.Only(cfg.PF), cfg.PF
	}
	// The record is on disk before the first change: whatever happens next, a DEL or the next
	// ADD of this VF can put it back.
	if err := n.store.Save(rec); err != nil {
		return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	if err := n.store.SetAttachment(args.ContainerID, args.IfName, vf.Address); err != nil {
		return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	ipamAdded := false
	defer func() {
		if err == nil {
			return
		}
		undo := context.WithoutCancel(ctx)
		if ipamAdded {
			if derr := n.ipam.Del(undo, cfg.IPAMType, cfg.Raw); derr != nil {
				n.log.Error(derr, "rolling back: IPAM DEL failed; the runtime's DEL retries it")
			}
		}
		if rerr := n.restore(undo, rec, ""); rerr != nil {
			n.log.Error(rerr, "rolling back the VF failed; its record stays for DEL or the next ADD", "deviceID", vf.Address)
			return
		}
		if ferr := n.forget(rec); ferr != nil {
			n.log.Error(ferr, "removing the record of a rolled-back VF")
		}
	}()
	if !cfg.PF.Empty() {
		if err := n.pf.Set(ctx, rec.PF, rec.VFIndex, cfg.PF); err != nil {
			return nil, types.NewError(types.ErrInternal, err.Error(), "")
		}
	}
	result := &current.Result{CNIVersion: current.ImplementedSpecVersion, Interfaces: []*current.Interface{{
		Name: args.IfName, Sandbox: args.Netns, PciID: vf.Address, Mac: rec.Pod.MAC, Mtu: rec.Pod.MTU,
	}}}
	if rec.Userspace && cfg.MAC != "" {
		result.Interfaces[0].Mac = cfg.MAC
	}
	if cfg.IPAMType != "" {
		r, err := n.ipam.Add(ctx, cfg.IPAMType, cfg.Raw)
		if err != nil {
			return nil, fmt.Errorf("IPAM %s: %w", cfg.IPAMType, err)
		}
		ipamAdded = true
		ipr, err := current.NewResultFromResult(r)
		if err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("the result of IPAM %s: %v", cfg.IPAMType, err), "")
		}
		for _, ip := range ipr.IPs {
			ip.Interface = current.Int(0)
		}
		result.IPs, result.Routes, result.DNS = ipr.IPs, ipr.Routes, ipr.DNS
	}
	if !rec.Userspace {
		if rec.Pod.Index, err = moveIn(vf.Address, rec.Host, netns, rec.Pod, result); err != nil {
			return nil, types.NewError(types.ErrInternal, err.Error(), "")
		}
	}
	rec.Phase = PhaseAdded
	if err := n.store.Save(rec); err != nil {
		return nil, types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	return result, nil
}

// restore puts the VF of rec back as it was before ADD: PF settings, then the netdev (from
// the pod's netns if it is there, else found in the host). sysfsName is the netdev sysfs lists
// for the VF now, "" when unknown.
func (n *node) restore(ctx context.Context, rec *Record, sysfsName string) error {
	if !rec.PFBefore.Empty() {
		if err := n.pf.Set(ctx, rec.PF, rec.VFIndex, rec.PFBefore); err != nil {
			return fmt.Errorf("restoring the PF settings: %w", err)
		}
	}
	if rec.Userspace {
		return nil
	}
	return release(rec.DeviceID, rec.Owner.Netns, rec.Pod, rec.Host, sysfsName)
}

// forget removes the record of a VF and its attachment index.
func (n *node) forget(rec *Record) error {
	if err := n.store.Remove(rec.DeviceID); err != nil {
		return err
	}
	return n.store.RemoveAttachment(rec.Owner.ContainerID, rec.Owner.IfName)
}

func pfOf(vf sysfs.VF) pf.PF { return pf.PF{Name: vf.PFName, PCI: vf.PFAddress} }
