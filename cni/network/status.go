package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net"

	cnitypes "github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
)

// Status is one entry of a pod's k8s.v1.cni.cncf.io/network-status annotation.
type Status = nadv1.NetworkStatus

// ReadStatus returns the network-status a pod reports; none when it has no annotation.
func ReadStatus(pod *corev1.Pod) ([]Status, error) {
	v, ok := pod.Annotations[NetworkStatusAnnotation]
	if !ok {
		return nil, nil
	}
	var st []Status
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return nil, fmt.Errorf("pod %s/%s: reading %s: %w", pod.Namespace, pod.Name, NetworkStatusAnnotation, err)
	}
	return st, nil
}

// StatusFromResult turns the CNI result of one attachment into its network-status entries, as
// Multus (the NAD client library's CreateNetworkStatuses) does: one entry per interface inside
// the pod (with a sandbox), its addresses by the result's interface index (an address naming
// no interface goes to the last one), the gateways of the default routes and the DNS on every
// entry. network is "namespace/name" of the NAD, or the default network's name; dev is the
// device-info of a device (an SR-IOV VF), or nil. Of the default network, the entry of the
// first interface with a gateway, else the first entry, is marked default.
//
// Written here rather than called from the NAD client library, whose package also holds a
// client of every Kubernetes API group: the node daemon would carry them all in memory.
func StatusFromResult(result cnitypes.Result, network string, isDefault bool, dev *nadv1.DeviceInfo) ([]Status, error) {
	r, err := current.NewResultFromResult(result)
	if err != nil {
		return nil, fmt.Errorf("network %s: building its network-status: %w", network, err)
	}
	dns := nadv1.DNS{Nameservers: append([]string{}, r.DNS.Nameservers...), Domain: r.DNS.Domain,
		Search: append([]string{}, r.DNS.Search...), Options: append([]string{}, r.DNS.Options...)}
	var gateways []string
	for _, route := range r.Routes {
		if isDefaultRoute(route) {
			gateways = append(gateways, route.GW.String())
		}
	}
	gwIface := -1
	for _, ip := range r.IPs {
		if ip.Gateway != nil && ip.Interface != nil {
			gwIface = *ip.Interface
			break
		}
	}
	out := make([]Status, 0, len(r.Interfaces))
	index := map[int]int{} // result interface index -> entry
	for i, iface := range r.Interfaces {
		if iface.Sandbox == "" {
			continue
		}
		index[i] = len(out)
		out = append(out, Status{Name: network, Interface: iface.Name, Mac: iface.Mac, Mtu: iface.Mtu, IPs: []string{},
			Gateway: gateways, DeviceInfo: dev, DNS: dns})
	}
	if len(r.Interfaces) == 1 {
		// One interface: every address is its own.
		st := Status{Name: network, Default: isDefault, Gateway: gateways, DeviceInfo: dev, DNS: dns}
		if len(out) == 1 {
			st.Interface, st.Mac, st.Mtu = out[0].Interface, out[0].Mac, out[0].Mtu
		}
		for _, ip := range r.IPs {
			st.IPs = append(st.IPs, ip.Address.IP.String())
		}
		return []Status{st}, nil
	}
	for _, ip := range r.IPs {
		switch {
		case ip.Interface != nil:
			if k, ok := index[*ip.Interface]; ok {
				out[k].IPs = append(out[k].IPs, ip.Address.IP.String())
			}
		case len(out) > 0:
			out[len(out)-1].IPs = append(out[len(out)-1].IPs, ip.Address.IP.String())
		}
	}
	if isDefault && len(out) > 0 {
		k, ok := index[gwIface]
		if !ok {
			k = 0
		}
		out[k].Default = true
	}
	return out, nil
}

func isDefaultRoute(r *cnitypes.Route) bool {
	return r.Dst.IP == nil && r.Dst.Mask == nil || r.Dst.IP.Equal(net.IPv4zero) || r.Dst.IP.Equal(net.IPv6zero)
}

// PodPatcher is the one API call writing the network-status needs (client-go's PodInterface
// has it).
type PodPatcher interface {
	Patch(ctx context.Context, name string, pt k8stypes.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Pod, error)
}

// WriteStatus sets the pod's network-status annotation with a merge patch of the pods/status
// subresource (the one permission a node daemon needs, as kubelet and Multus write it), so it
// never conflicts with other writers of the pod and needs no read first.
func WriteStatus(ctx context.Context, pods PodPatcher, podName string, statuses []Status) error {
	if statuses == nil {
		statuses = []Status{}
	}
	value, err := json.MarshalIndent(statuses, "", "    ")
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{NetworkStatusAnnotation: string(value)}},
	})
	if err != nil {
		return err
	}
	if _, err := pods.Patch(ctx, podName, k8stypes.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("pod %s: writing %s: %w", podName, NetworkStatusAnnotation, err)
	}
	return nil
}
