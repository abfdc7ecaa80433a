package sriov

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// tempName is the name a VF netdev has while it moves between namespaces: derived from its PCI
// address, so it is unique on the node and found again after a crash mid-move.
func tempName(pci string) string {
	h := fnv.New32a()
	h.Write([]byte(pci))
	return fmt.Sprintf("pxsv%08x", h.Sum32())
}

func linkState(l netlink.Link) NetdevState {
	a := l.Attrs()
	return NetdevState{Name: a.Name, MAC: a.HardwareAddr.String(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
}

// hostNetdev reads the netdev name in the host (the caller's netns).
func hostNetdev(name string) (NetdevState, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return NetdevState{}, fmt.Errorf("VF netdev %s: %w", name, err)
	}
	return linkState(l), nil
}

// configure sets l down, renames it to want.Name and sets its MAC and MTU (when given); it leaves
// the link down: the caller brings it up where it belongs.
func configure(l netlink.Link, want NetdevState) error {
	if l.Attrs().Flags&net.FlagUp != 0 {
		if err := netlink.LinkSetDown(l); err != nil {
			return fmt.Errorf("setting %s down: %w", l.Attrs().Name, err)
		}
	}
	if l.Attrs().Name != want.Name {
		if err := netlink.LinkSetName(l, want.Name); err != nil {
			return fmt.Errorf("renaming %s to %s: %w", l.Attrs().Name, want.Name, err)
		}
	}
	if want.MAC != "" && want.MAC != l.Attrs().HardwareAddr.String() {
		hw, err := net.ParseMAC(want.MAC)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetHardwareAddr(l, hw); err != nil {
			return fmt.Errorf("setting the MAC of %s to %s: %w", want.Name, want.MAC, err)
		}
	}
	if want.MTU != 0 && want.MTU != l.Attrs().MTU {
		if err := netlink.LinkSetMTU(l, want.MTU); err != nil {
			return fmt.Errorf("setting the MTU of %s to %d: %w", want.Name, want.MTU, err)
		}
	}
	return nil
}

// moveIn moves the host netdev host.Name (VF pci) into netns as pod.Name with pod's MAC and MTU,
// up, configures the IPAM result's addresses and routes on it (when r is not nil), and returns
// its ifindex there. On failure it brings the netdev back as it found it, as far as it can.
func moveIn(pci string, host NetdevState, netns ns.NetNS, pod NetdevState, r *current.Result) (index int, err error) {
	l, err := netlink.LinkByName(host.Name)
	if err != nil {
		return 0, fmt.Errorf("VF netdev %s: %w", host.Name, err)
	}
	moved, err := moveLink(l, pci, netns)
	if err != nil {
		_ = restoreInHost(pci, host, host.Name)
		return 0, fmt.Errorf("moving VF netdev %s into %s: %w", host.Name, netns.Path(), err)
	}
	err = netns.Do(func(hostNS ns.NetNS) error {
		var err error
		index, err = setupInPod(moved, pod, r)
		if err != nil {
			for _, name := range []string{moved, pod.Name} {
				if l, lerr := netlink.LinkByName(name); lerr == nil {
					if back, merr := moveLink(l, pci, hostNS); merr == nil {
						_ = hostNS.Do(func(ns.NetNS) error { return restoreInHost(pci, host, back) })
					}
					break
				}
			}
		}
		return err
	})
	return index, err
}

// moveLink moves l into netns under its name, which also sets it down; when that name is taken
// there, under the VF's moving name. It returns the name l has in netns.
func moveLink(l netlink.Link, pci string, netns ns.NetNS) (string, error) {
	err := netlink.LinkSetNsFd(l, int(netns.Fd()))
	if err == nil {
		return l.Attrs().Name, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return "", err
	}
	tmp := tempName(pci)
	if err := configure(l, NetdevState{Name: tmp}); err != nil {
		return "", err
	}
	return tmp, netlink.LinkSetNsFd(l, int(netns.Fd()))
}

func setupInPod(tmp string, pod NetdevState, r *current.Result) (int, error) {
	l, err := netlink.LinkByName(tmp)
	if err != nil {
		return 0, err
	}
	if err := configure(l, pod); err != nil {
		return 0, err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return 0, fmt.Errorf("setting %s up: %w", pod.Name, err)
	}
	if r != nil && len(r.IPs) > 0 {
		if err := configureAddresses(l, r); err != nil {
			return 0, fmt.Errorf("configuring the addresses of %s: %w", pod.Name, err)
		}
	}
	return l.Attrs().Index, nil
}

// errNetdevGone is wrapped when the VF netdev is found nowhere.
var errNetdevGone = errors.New("VF netdev not found")

// release brings the VF netdev back from netnsPath (when it still exists and holds the VF: a
// link named pod.Name with pod.Index, or one with the VF's moving or host name, which ADD may
// have left there half-way) to the host as host, then restores it there. sysfsName is the
// netdev the VF lists in sysfs now ("" if none): a VF whose netns died comes back under the name
// it had in the pod, or a kernel-chosen one, which sysfs shows.
func release(pci, netnsPath string, pod, host NetdevState, sysfsName string) error {
	back := ""
	if netnsPath != "" {
		if netns, err := ns.GetNS(netnsPath); err == nil {
			err := netns.Do(func(hostNS ns.NetNS) error {
				l := podLink(pci, pod, host)
				if l == nil {
					return nil // not here: look in the host
				}
				var err error
				if back, err = moveLink(l, pci, hostNS); err != nil {
					return fmt.Errorf("moving VF netdev %s back to the host: %w", l.Attrs().Name, err)
				}
				return nil
			})
			netns.Close()
			if err != nil {
				return err
			}
		}
	}
	return restoreInHost(pci, host, back, sysfsName)
}

// podLink finds the VF's link in the current (pod) netns, nil when it is not there.
func podLink(pci string, pod, host NetdevState) netlink.Link {
	if l, err := netlink.LinkByName(pod.Name); err == nil && pod.Index != 0 && l.Attrs().Index == pod.Index {
		return l
	}
	for _, name := range []string{tempName(pci), host.Name} {
		if l, err := netlink.LinkByName(name); err == nil {
			return l
		}
	}
	return nil
}

// restoreInHost finds the VF netdev in the host (under one of names, its moving name or its host
// name) and gives it back host's name, MAC, MTU and up state.
func restoreInHost(pci string, host NetdevState, names ...string) error {
	names = append(names, tempName(pci), host.Name)
	for _, name := range names {
		if name == "" {
			continue
		}
		l, err := netlink.LinkByName(name)
		if err != nil {
			continue
		}
		if err := configure(l, host); err != nil {
			return err
		}
		if host.Up {
			if err := netlink.LinkSetUp(l); err != nil {
				return fmt.Errorf("setting %s up: %w", host.Name, err)
			}
		}
		return nil
	}
	return fmt.Errorf("VF %s: %w in the pod's netns nor in the host (looked for %q)", pci, errNetdevGone, names)
}

// configureAddresses adds the IPAM result's addresses to l and its routes, each through the
// gateway of its family when the route names none.
func configureAddresses(l netlink.Link, r *current.Result) error {
	var gw4, gw6 net.IP
	for _, ipc := range r.IPs {
		a := ipc.Address
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &a}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding %s to %s: %w", a.String(), l.Attrs().Name, err)
		}
		if ipc.Gateway == nil {
			continue
		}
		if ipc.Gateway.To4() != nil && gw4 == nil {
			gw4 = ipc.Gateway
		} else if ipc.Gateway.To4() == nil && gw6 == nil {
			gw6 = ipc.Gateway
		}
	}
	for _, rt := range r.Routes {
		gw := rt.GW
		if gw == nil {
			gw = gw6
			if rt.Dst.IP.To4() != nil {
				gw = gw4
			}
		}
		dst := rt.Dst
		route := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: &dst, Gw: gw, Priority: rt.Priority}
		if rt.MTU != 0 {
			route.MTU = rt.MTU
		}
		if err := netlink.RouteAdd(route); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding the route to %s via %v on %s: %w", dst.String(), gw, l.Attrs().Name, err)
		}
	}
	return nil
}
