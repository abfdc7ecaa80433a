package capacity

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/plexus-project/plexus/deviceplugin/pool"
)

// Annotation is the Node annotation holding the JSON NodeCapacity.
const Annotation = "deviceplugin.plexus.io/sriov-capacity"

// NodeCapacity is the value of Annotation.
type NodeCapacity struct {
	// Pools by full resource name, e.g. intel.com/sriov_netdevice.
	Pools map[string]PoolCapacity `json:"pools"`
}

// PoolCapacity counts one pool's VFs.
type PoolCapacity struct {
	Count `json:",inline"`
	// NUMA counts per NUMA node ("-1" when the platform reports none).
	NUMA map[string]Count `json:"numa,omitempty"`
	// PFs counts per PF, keyed by the PF's PCI address.
	PFs map[string]PFCount `json:"pfs,omitempty"`
}

// Count is a pair of counters.
type Count struct {
	// Healthy VFs (allocated or not).
	Healthy int `json:"healthy"`
	// Free is the healthy VFs not allocated to a pod.
	Free int `json:"free"`
}

// PFCount is a Count for one PF.
type PFCount struct {
	Count `json:",inline"`
	// Name is the PF netdev name, NUMA its NUMA node.
	Name string `json:"name,omitempty"`
	NUMA int    `json:"numa"`
}

// Compute counts the pools' VFs; unhealthy and allocated are sets of device IDs.
func Compute(pools []pool.Pool, unhealthy, allocated func(id string) bool) NodeCapacity {
	nc := NodeCapacity{Pools: map[string]PoolCapacity{}}
	for _, p := range pools {
		pc := PoolCapacity{NUMA: map[string]Count{}, PFs: map[string]PFCount{}}
		for _, vf := range p.Devices {
			numa := strconv.Itoa(vf.NUMANode)
			nc, pfc := pc.NUMA[numa], pc.PFs[vf.PFAddress]
			pfc.Name, pfc.NUMA = vf.PFName, vf.NUMANode
			if !unhealthy(vf.Address) {
				pc.Healthy++
				nc.Healthy++
				pfc.Healthy++
				if !allocated(vf.Address) {
					pc.Free++
					nc.Free++
					pfc.Free++
				}
			}
			pc.NUMA[numa], pc.PFs[vf.PFAddress] = nc, pfc
		}
		nc.Pools[p.Name] = pc
	}
	return nc
}

// FromNode reads the annotation of node; ok is false when it has none.
func FromNode(node *corev1.Node) (nc NodeCapacity, ok bool, err error) {
	v, ok := node.Annotations[Annotation]
	if !ok {
		return NodeCapacity{}, false, nil
	}
	if err := json.Unmarshal([]byte(v), &nc); err != nil {
		return NodeCapacity{}, true, fmt.Errorf("node %s: annotation %s: %w", node.Name, Annotation, err)
	}
	return nc, true, nil
}

// NodePatcher patches Nodes; client-go's CoreV1().Nodes() implements it.
type NodePatcher interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Node, error)
}

// Publisher writes the annotation of one node, skipping writes that change nothing.
type Publisher struct {
	Nodes    NodePatcher
	NodeName string

	last string
}

// Publish writes nc to the node's annotation unless it is already what was last written.
func (p *Publisher) Publish(ctx context.Context, nc NodeCapacity) error {
	b, err := json.Marshal(nc)
	if err != nil {
		return err
	}
	if string(b) == p.last {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{Annotation: string(b)}}})
	if err != nil {
		return err
	}
	if _, err := p.Nodes.Patch(ctx, p.NodeName, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "plexus-deviceplugin"}); err != nil {
		return fmt.Errorf("publishing SR-IOV capacity on node %s (does the plugin's service account may patch nodes, and is --node-name right?): %w", p.NodeName, err)
	}
	p.last = string(b)
	return nil
}
