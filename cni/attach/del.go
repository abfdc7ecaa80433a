package attach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/cni/cache"
)

// Del detaches every network of the container from the cached record: no NAD, pod or API
// server needed. A container with no record was never attached (or is already detached) and
// succeeds; a plugin that fails fails the call, and the record keeps what is still attached
// so the runtime's next DEL retries it.
func (a *Attacher) Del(ctx context.Context, c *Call) error {
	defer a.lock(c.ContainerID)()
	log := logr.FromContextOrDiscard(ctx).WithValues("container", c.ContainerID)
	ctx = logr.NewContext(ctx, log)
	entry, err := a.host.Cache.Get(c.ContainerID)
	if err != nil {
		return types.NewError(types.ErrInternal, "plexus: reading the result cache", err.Error())
	}
	if entry == nil {
		log.V(1).Info("DEL of a container with no cached attachments: nothing to do")
		return nil
	}
	if err := a.detach(ctx, entry, c.Netns); err != nil {
		if a.host.Metrics != nil {
			a.host.Metrics.Failed("DEL", reasonOf(err))
		}
		return asCNIError(err)
	}
	log.V(1).Info("detached", "pod", entry.PodNamespace+"/"+entry.PodName)
	return nil
}

// detach deletes the attachments of entry in reverse order and updates the cache: the entry
// goes once all are deleted; those that failed stay in it.
func (a *Attacher) detach(ctx context.Context, entry *cache.Entry, netns string) error {
	if netns == "" {
		netns = entry.Netns
	}
	var errs []error
	var left []cache.Attachment
	for i := len(entry.Attachments) - 1; i >= 0; i-- {
		att := entry.Attachments[i]
		if err := a.delOne(ctx, entry.ContainerID, netns, &att); err != nil {
			errs = append(errs, err)
			left = append([]cache.Attachment{att}, left...)
		}
	}
	if len(left) == 0 {
		if err := a.host.Cache.Delete(entry.ContainerID); err != nil {
			return err
		}
		return nil
	}
	entry.Attachments = left
	if err := a.host.Cache.Put(entry); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (a *Attacher) delOne(ctx context.Context, containerID, netns string, att *cache.Attachment) error {
	list, err := libcni.NetworkConfFromBytes(att.Config)
	if err != nil {
		return fmt.Errorf("network %s (interface %s): the cached config does not parse: %w", att.Network, att.IfName, err)
	}
	if err := a.host.Delegates.DelNetworkList(ctx, list, a.runtimeConf(containerID, netns, att)); err != nil {
		cause, _ := a.explainIn(list, err.Error())
		return fmt.Errorf("network %s (plugin %s, interface %s): DEL failed: %s", att.Network, typesOf(list), att.IfName, cause)
	}
	return nil
}

func typesOf(list *libcni.NetworkConfigList) string {
	out := ""
	for i, p := range list.Plugins {
		if i > 0 {
			out += "+"
		}
		out += p.Network.Type
	}
	return out
}

// Check runs every delegate's CHECK and verifies that the interfaces and addresses of the
// cached results exist in the pod's network namespace.
func (a *Attacher) Check(ctx context.Context, c *Call) error {
	defer a.lock(c.ContainerID)()
	entry, err := a.host.Cache.Get(c.ContainerID)
	if err != nil {
		return types.NewError(types.ErrInternal, "plexus: reading the result cache", err.Error())
	}
	if entry == nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("container %s has no attachments recorded by plexus-daemon on node %s: was it added?", c.ContainerID, a.opts.NodeName), "")
	}
	var errs []error
	var want []Interface
	for i := range entry.Attachments {
		att := &entry.Attachments[i]
		list, err := libcni.NetworkConfFromBytes(att.Config)
		if err != nil {
			errs = append(errs, fmt.Errorf("network %s: the cached config does not parse: %w", att.Network, err))
			continue
		}
		if err := a.host.Delegates.CheckNetworkList(ctx, list, a.runtimeConf(c.ContainerID, c.Netns, att)); err != nil {
			errs = append(errs, fmt.Errorf("network %s (plugin %s, interface %s): CHECK failed: %w", att.Network, typesOf(list), att.IfName, err))
		}
		ifs, err := interfacesOf(att)
		if err != nil {
			errs = append(errs, err)
		}
		want = append(want, ifs...)
	}
	if err := a.host.Netns.CheckInterfaces(c.Netns, want); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		if a.host.Metrics != nil {
			a.host.Metrics.Failed("CHECK", "check")
		}
		return types.NewError(types.ErrInternal, err.Error(), "")
	}
	return nil
}

// interfacesOf lists the pod-side interfaces of a cached result with their addresses.
func interfacesOf(att *cache.Attachment) ([]Interface, error) {
	if len(att.Result) == 0 {
		return nil, fmt.Errorf("network %s (interface %s): no result was cached: its ADD did not finish", att.Network, att.IfName)
	}
	var r current.Result
	if err := json.Unmarshal(att.Result, &r); err != nil {
		return nil, fmt.Errorf("network %s: the cached result does not parse: %w", att.Network, err)
	}
	var out []Interface
	index := map[int]int{}
	for i, iface := range r.Interfaces {
		if iface.Sandbox != "" {
			index[i] = len(out)
			out = append(out, Interface{Name: iface.Name})
		}
	}
	for _, ip := range r.IPs {
		if ip.Interface == nil {
			continue
		}
		if j, ok := index[*ip.Interface]; ok {
			out[j].Addrs = append(out[j].Addrs, ip.Address)
		}
	}
	return out, nil
}

// validAttachments reads the CNI 1.1 GC list of the runtime.
type gcConf struct {
	Valid []types.GCAttachment `json:"cni.dev/valid-attachments"`
	// Old name, from an error in the spec (libcni sends both).
	Attachments []types.GCAttachment `json:"cni.dev/attachments"`
}

// GC detaches the cached containers the runtime no longer lists, then passes GC on to every
// delegate network with the attachments still valid for it.
func (a *Attacher) GC(ctx context.Context, c *Call) error {
	log := logr.FromContextOrDiscard(ctx)
	var gc gcConf
	if err := json.Unmarshal(c.Config, &gc); err != nil {
		return types.NewError(types.ErrDecodingFailure, "plexus: cannot parse the GC configuration", err.Error())
	}
	valid := map[types.GCAttachment]bool{}
	for _, v := range append(gc.Valid, gc.Attachments...) {
		valid[v] = true
	}
	ids, err := a.host.Cache.List()
	if err != nil {
		return types.NewError(types.ErrInternal, "plexus: listing the result cache", err.Error())
	}
	var errs []error
	networks := map[string]*libcni.NetworkConfigList{}
	perNetwork := map[string][]types.GCAttachment{}
	for _, id := range ids {
		err := func() error {
			defer a.lock(id)()
			entry, err := a.host.Cache.Get(id)
			if err != nil || entry == nil {
				return err
			}
			if !valid[types.GCAttachment{ContainerID: id, IfName: entry.IfName}] {
				log.Info("GC: detaching a container the runtime no longer has", "container", id, "pod", entry.PodNamespace+"/"+entry.PodName)
				return a.detach(ctx, entry, entry.Netns)
			}
			for _, att := range entry.Attachments {
				list, err := libcni.NetworkConfFromBytes(att.Config)
				if err != nil {
					continue
				}
				if _, ok := networks[list.Name]; !ok {
					networks[list.Name] = list
				}
				perNetwork[list.Name] = append(perNetwork[list.Name], types.GCAttachment{ContainerID: id, IfName: att.IfName})
			}
			return nil
		}()
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", id, err))
		}
	}
	if cluster := a.host.Cluster.Current(); cluster != nil {
		if _, ok := networks[cluster.Config.Name]; !ok {
			networks[cluster.Config.Name] = cluster.Config
		}
	}
	for name, list := range networks {
		if err := a.host.Delegates.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: perNetwork[name]}); err != nil {
			errs = append(errs, fmt.Errorf("GC of network %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return types.NewError(types.ErrInternal, err.Error(), "")
	}
	return nil
}

// Status reports whether ADDs can succeed: the cluster network is known and its plugins are
// ready (CNI 1.1 STATUS, for configs of that version).
func (a *Attacher) Status(ctx context.Context) error {
	cluster := a.host.Cluster.Current()
	if cluster == nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("plexus-daemon on node %s does not know the cluster network yet", a.opts.NodeName), "")
	}
	if err := a.host.Delegates.GetStatusNetworkList(ctx, cluster.Config); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("the cluster network %s is not ready", cluster.Config.Name), err.Error())
	}
	return nil
}

// withoutDefaults drops the default routes of the IP families of gws.
func withoutDefaults(routes []*types.Route, gws []net.IP) []*types.Route {
	var out []*types.Route
	for _, r := range routes {
		drop := false
		if ones, _ := r.Dst.Mask.Size(); r.Dst.Mask != nil && ones == 0 {
			for _, gw := range gws {
				if (gw.To4() == nil) == (r.Dst.IP.To4() == nil) {
					drop = true
				}
			}
		}
		if !drop {
			out = append(out, r)
		}
	}
	return out
}

func defaultRoute(gw net.IP) *types.Route {
	if gw.To4() != nil {
		return &types.Route{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw}
	}
	return &types.Route{Dst: net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, GW: gw}
}
