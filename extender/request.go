package extender

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/ipam/allocator"
)

// request is what one pod needs, resolved against the Cluster's NADs.
type request struct {
	uid types.UID
	// nets are the selected networks, each once, in selection order.
	nets []*nadState
	// names are the networks as the pod wrote them, by NAD key.
	names map[string]string
	// vfs are the VFs needed per resource, sorted by resource.
	vfs []vfNeed
	// pools are the addresses needed per plexus-ipam pool.
	pools []poolNeed
	// singleNUMA: the pod asks for each resource's VFs on one NUMA node.
	singleNUMA bool
	// fail, when set, rejects the pod on every node.
	fail *verdict
}

type vfNeed struct {
	resource string
	id       int
	count    int64
	// networks are the networks (as the pod names them) that use the resource.
	networks []string
}

type poolNeed struct {
	pool    allocator.Pool
	count   int64
	network string
}

// empty is true when the pod needs nothing the extender judges.
func (r *request) empty() bool {
	return r.fail == nil && len(r.nets) == 0 && len(r.vfs) == 0
}

// resolve reads what pod needs. The caller holds c.mu.
func (c *Cluster) resolve(pod *corev1.Pod) *request {
	req := &request{uid: pod.UID, names: map[string]string{}, singleNUMA: pod.Annotations[SingleNUMAAnnotation] == "true"}
	sels, err := podSelections(pod)
	if err != nil {
		req.fail = &verdict{reason: ReasonSelectionInvalid, unresolvable: true,
			msg: fmt.Sprintf("the pod's networks cannot be read: %v; fix the annotation", err)}
		return req
	}
	if len(sels) > c.opts.MaxNetworks {
		req.fail = &verdict{reason: ReasonTooManyNetworks, unresolvable: true,
			msg: fmt.Sprintf("the pod selects %d networks, more than the %d the scheduler extender accepts; select fewer", len(sels), c.opts.MaxNetworks)}
		return req
	}
	vfs := map[string]*vfNeed{}
	pools := map[string]*poolNeed{}
	for _, sel := range sels {
		name := sel.Name
		if sel.Namespace != pod.Namespace {
			name = sel.Key()
		}
		ns, ok := c.nads[sel.Key()]
		if !ok {
			req.fail = &verdict{reason: ReasonNetworkMissing, unresolvable: true, msg: fmt.Sprintf(
				"network %s: NetworkAttachmentDefinition %s does not exist; create it or fix the pod's %s annotation",
				name, sel.Key(), network.NetworksAnnotation)}
			return req
		}
		if ns.net == nil {
			req.fail = &verdict{reason: ReasonNetworkInvalid, unresolvable: true,
				msg: fmt.Sprintf("network %s: %v; fix the NetworkAttachmentDefinition", name, ns.err)}
			return req
		}
		if _, seen := req.names[ns.key]; !seen {
			req.names[ns.key] = name
			req.nets = append(req.nets, ns)
		}
		if rn := ns.net.ResourceName; rn != "" {
			v := vfs[rn]
			if v == nil {
				v = &vfNeed{resource: rn}
				vfs[rn] = v
			}
			v.count++
			if !slices.Contains(v.networks, name) {
				v.networks = append(v.networks, name)
			}
		}
		for _, p := range ns.pools {
			pn := pools[p.Name]
			if pn == nil {
				pn = &poolNeed{pool: p, network: name}
				pools[p.Name] = pn
			}
			pn.count++
		}
	}
	// The pod's own requests win when they ask for more than its networks use (the device
	// plugin allocates what is requested).
	for r, n := range podResources(pod) {
		if c.vfResources[r] == 0 {
			continue
		}
		if v := vfs[r]; v == nil {
			vfs[r] = &vfNeed{resource: r, count: n}
		} else if n > v.count {
			v.count = n
		}
	}
	for _, v := range vfs {
		v.id = c.resID(v.resource)
		req.vfs = append(req.vfs, *v)
	}
	sort.Slice(req.vfs, func(i, j int) bool { return req.vfs[i].resource < req.vfs[j].resource })
	for _, p := range pools {
		req.pools = append(req.pools, *p)
	}
	sort.Slice(req.pools, func(i, j int) bool { return req.pools[i].pool.Name < req.pools[j].pool.Name })
	return req
}

// who names the networks needing a resource for a message: "network a" or "networks a, b", or
// "the pod" when only its requests ask.
func (v *vfNeed) who() string {
	switch len(v.networks) {
	case 0:
		return "the pod's request"
	case 1:
		return "network " + v.networks[0]
	default:
		return "networks " + strings.Join(v.networks, ", ")
	}
}
