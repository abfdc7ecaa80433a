package extender

import (
	"sort"
	"sync"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/plexus-project/plexus/deviceplugin/capacity"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Cluster is the extender's view of the cluster: nodes, the pods bound to them, the
// NetworkAttachmentDefinitions, the IPBlocks of plexus-ipam and the pods Filter admitted but has
// not seen bound yet. Informer handlers call its Set/Delete methods; Filter and Prioritize read
// it and never call the API server. It is safe for concurrent use.
type Cluster struct {
	opts Options

	mu    sync.Mutex
	nodes map[string]*nodeState
	// counts are, per node, the VFs of bound pods and of pods admitted there but not yet seen
	// bound. They are kept apart from nodes: a pod's event may come first.
	counts map[string]*nodeCounts
	// assumedEverywhere counts, per resource, the VFs of pods admitted on every node there is
	// (the common case, recorded once instead of once per node).
	assumedEverywhere vec
	// resIDs number the extended resource names, so per-node counts are slices, not maps: a
	// filter call reads them for every node.
	resIDs map[string]int
	pods   map[types.UID]*podState
	// podsByNAD indexes bound pods by the keys of the NADs they select, for pool accounting.
	podsByNAD map[string]map[types.UID]*podState
	inflight  map[types.UID]*assumedPod
	nads      map[string]*nadState
	// vfResources counts, per resource name, the NADs and nodes that make it a VF pool.
	vfResources map[string]int
	blocks      map[string]map[string]*v1alpha1.IPBlock // network -> block name -> block
	blockNet    map[string]string                       // block name -> network
	// gen changes whenever pool accounting may change (pods, NADs, blocks, assumptions).
	gen      uint64
	poolMemo map[string]poolMemo
	// slots are the NADs with a node selector by their presence bit; freeSlots can be reused.
	slots     []*nadState
	freeSlots []int
	lastSweep time.Time
}

type nodeState struct {
	name   string
	labels labels.Set
	// alloc is the allocatable count of each extended resource, by resource ID.
	alloc vec
	// capacity is plexus-deviceplugin's published capacity; nil when the node has none.
	// published is its pools by resource ID.
	capacity   *capacity.NodeCapacity
	published  []*layout
	singleNUMA bool
	counts     *nodeCounts
	// present has a bit per NAD slot: the NAD's node selector matches the node's labels.
	present bits
}

// nodeCounts are the VFs taken on one node, per resource.
type nodeCounts struct {
	used, assumed vec
}

// vec is a count per resource ID; IDs past its end count 0.
type vec []int64

func (v vec) at(id int) int64 {
	if id < len(v) {
		return v[id]
	}
	return 0
}

func (v *vec) add(id int, n int64) {
	for len(*v) <= id {
		*v = append(*v, 0)
	}
	(*v)[id] += n
}

type podState struct {
	uid             types.UID
	namespace, name string
	node            string
	resources       map[string]int64
	nads            []string
}

// NewCluster returns an empty Cluster.
func NewCluster(opts Options) *Cluster {
	opts.setDefaults()
	return &Cluster{
		opts:        opts,
		nodes:       map[string]*nodeState{},
		counts:      map[string]*nodeCounts{},
		resIDs:      map[string]int{},
		pods:        map[types.UID]*podState{},
		podsByNAD:   map[string]map[types.UID]*podState{},
		inflight:    map[types.UID]*assumedPod{},
		nads:        map[string]*nadState{},
		vfResources: map[string]int{},
		blocks:      map[string]map[string]*v1alpha1.IPBlock{},
		blockNet:    map[string]string{},
		poolMemo:    map[string]poolMemo{},
	}
}

// SetNode records a Node's labels, allocatable extended resources, published VF capacity and
// Topology Manager policy label.
func (c *Cluster) SetNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns := c.nodeState(node)
	c.forgetNodeResources(c.nodes[node.Name])
	ns.counts = c.countsOf(node.Name)
	c.nodes[node.Name] = ns
	if ns.capacity != nil {
		for r := range ns.capacity.Pools {
			c.vfResources[r]++
		}
	}
}

// nodeState reads what the extender needs of a Node. The caller holds c.mu.
func (c *Cluster) nodeState(node *corev1.Node) *nodeState {
	ns := &nodeState{
		name:       node.Name,
		labels:     labels.Set(node.Labels),
		singleNUMA: node.Labels[TopologyPolicyLabel] == PolicySingleNUMANode,
	}
	c.judgePresence(ns)
	for r, n := range extendedResources(node.Status.Allocatable) {
		ns.alloc.add(c.resID(r), n)
	}
	// A malformed annotation is ignored: the node is then judged by allocatable alone.
	if nc, ok, err := capacity.FromNode(node); ok && err == nil {
		ns.capacity = &nc
		for r, pc := range nc.Pools {
			id := c.resID(r)
			for len(ns.published) <= id {
				ns.published = append(ns.published, nil)
			}
			ns.published[id] = newLayout(pc)
		}
	}
	return ns
}

// resID is the ID of resource name r. The caller holds c.mu.
func (c *Cluster) resID(r string) int {
	id, ok := c.resIDs[r]
	if !ok {
		id = len(c.resIDs)
		c.resIDs[r] = id
	}
	return id
}

// DeleteNode forgets a Node.
func (c *Cluster) DeleteNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetNodeResources(c.nodes[name])
	delete(c.nodes, name)
}

func (c *Cluster) forgetNodeResources(old *nodeState) {
	if old == nil || old.capacity == nil {
		return
	}
	for r := range old.capacity.Pools {
		c.release(c.vfResources, r)
	}
}

// SetPod records a pod: once bound and until it ends, its extended resources count against its
// node and its networks against their pools, and it stops being an assumption.
func (c *Cluster) SetPod(pod *corev1.Pod) {
	if pod.Spec.NodeName == "" {
		return
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		c.DeletePod(pod.UID)
		return
	}
	ps := &podState{
		uid: pod.UID, namespace: pod.Namespace, name: pod.Name, node: pod.Spec.NodeName,
		resources: podResources(pod),
		nads:      selectedNADs(pod),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removePod(pod.UID)
	c.dropAssumption(pod.UID)
	c.pods[pod.UID] = ps
	c.add(&c.countsOf(ps.node).used, ps.resources, 1)
	for _, k := range ps.nads {
		if c.podsByNAD[k] == nil {
			c.podsByNAD[k] = map[types.UID]*podState{}
		}
		c.podsByNAD[k][ps.uid] = ps
	}
	c.gen++
}

// DeletePod forgets a pod (deleted, or ended): its VFs and addresses count no more.
func (c *Cluster) DeletePod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removePod(uid)
	c.dropAssumption(uid)
}

func (c *Cluster) removePod(uid types.UID) {
	old, ok := c.pods[uid]
	if !ok {
		return
	}
	delete(c.pods, uid)
	c.add(&c.countsOf(old.node).used, old.resources, -1)
	for _, k := range old.nads {
		delete(c.podsByNAD[k], uid)
		if len(c.podsByNAD[k]) == 0 {
			delete(c.podsByNAD, k)
		}
	}
	c.gen++
}

// SetNAD parses and records a NetworkAttachmentDefinition. An invalid one is kept, with its
// error, so pods selecting it are told what is wrong.
func (c *Cluster) SetNAD(nad *nadv1.NetworkAttachmentDefinition) {
	ns := newNADState(nad)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetNAD(nad.Namespace + "/" + nad.Name)
	c.nads[ns.key] = ns
	c.takeSlot(ns)
	if ns.net != nil && ns.net.ResourceName != "" {
		c.vfResources[ns.net.ResourceName]++
	}
	c.gen++
}

// DeleteNAD forgets a NetworkAttachmentDefinition.
func (c *Cluster) DeleteNAD(namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetNAD(namespace + "/" + name)
	c.gen++
}

func (c *Cluster) forgetNAD(key string) {
	old, ok := c.nads[key]
	if !ok {
		return
	}
	delete(c.nads, key)
	c.releaseSlot(old)
	if old.net != nil && old.net.ResourceName != "" {
		c.release(c.vfResources, old.net.ResourceName)
	}
}

// SetBlock records an IPBlock of plexus-ipam.
func (c *Cluster) SetBlock(b *v1alpha1.IPBlock) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleteBlock(b.Name)
	if c.blocks[b.Spec.Network] == nil {
		c.blocks[b.Spec.Network] = map[string]*v1alpha1.IPBlock{}
	}
	c.blocks[b.Spec.Network][b.Name] = b
	c.blockNet[b.Name] = b.Spec.Network
	c.gen++
}

// DeleteBlock forgets an IPBlock.
func (c *Cluster) DeleteBlock(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleteBlock(name)
	c.gen++
}

func (c *Cluster) deleteBlock(name string) {
	net, ok := c.blockNet[name]
	if !ok {
		return
	}
	delete(c.blockNet, name)
	delete(c.blocks[net], name)
	if len(c.blocks[net]) == 0 {
		delete(c.blocks, net)
	}
}

// ResourceNames is every device resource name the NetworkAttachmentDefinitions use, sorted: the
// scheduler's managedResources.
func (c *Cluster) ResourceNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, n := range c.nads {
		if n.net != nil && n.net.ResourceName != "" {
			seen[n.net.ResourceName] = true
		}
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Size reports how many nodes, bound pods, NADs and assumed pods the Cluster holds.
func (c *Cluster) Size() (nodes, pods, nads, assumed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes), len(c.pods), len(c.nads), len(c.inflight)
}

func (c *Cluster) release(m map[string]int, k string) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// countsOf is node's counts, created on first use. The caller holds c.mu.
func (c *Cluster) countsOf(node string) *nodeCounts {
	nc := c.counts[node]
	if nc == nil {
		nc = &nodeCounts{}
		c.counts[node] = nc
	}
	return nc
}

// add adds sign*res to v. The caller holds c.mu.
func (c *Cluster) add(v *vec, res map[string]int64, sign int64) {
	for r, n := range res {
		v.add(c.resID(r), sign*n)
	}
}
