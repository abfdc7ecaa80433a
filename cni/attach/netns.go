package attach

import (
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// LinuxNetns is Netns over netlink, inside the namespace (pkg/ns).
type LinuxNetns struct{}

var _ Netns = LinuxNetns{}

// SetDefaultRoute replaces the default routes of the families of gws with routes via gws on
// ifName.
func (LinuxNetns) SetDefaultRoute(netns, ifName string, gws []net.IP) error {
	return ns.WithNetNSPath(netns, func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifName, err)
		}
		for _, gw := range gws {
			family, dst := netlink.FAMILY_V4, &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
			if gw.To4() == nil {
				family, dst = netlink.FAMILY_V6, &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
			}
			routes, err := netlink.RouteList(nil, family)
			if err != nil {
				return fmt.Errorf("listing the routes: %w", err)
			}
			for _, r := range routes {
				if isDefault(r.Dst) {
					if err := netlink.RouteDel(&r); err != nil {
						return fmt.Errorf("removing the default route via %v: %w", r.Gw, err)
					}
				}
			}
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Gw: gw}); err != nil {
				return fmt.Errorf("adding the default route via %s dev %s: %w", gw, ifName, err)
			}
		}
		return nil
	})
}

// CheckInterfaces verifies each interface exists in the namespace with its addresses.
func (LinuxNetns) CheckInterfaces(netns string, want []Interface) error {
	return ns.WithNetNSPath(netns, func(ns.NetNS) error {
		var errs []error
		for _, w := range want {
			link, err := netlink.LinkByName(w.Name)
			if err != nil {
				errs = append(errs, fmt.Errorf("interface %s is missing from the pod: %w", w.Name, err))
				continue
			}
			addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
			if err != nil {
				errs = append(errs, fmt.Errorf("interface %s: listing its addresses: %w", w.Name, err))
				continue
			}
			for _, want := range w.Addrs {
				found := false
				for _, a := range addrs {
					if a.IPNet.IP.Equal(want.IP) {
						found = true
						break
					}
				}
				if !found {
					errs = append(errs, fmt.Errorf("interface %s lacks its address %s", w.Name, want.String()))
				}
			}
		}
		return errors.Join(errs...)
	})
}

func isDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0 && dst.IP.IsUnspecified()
}
