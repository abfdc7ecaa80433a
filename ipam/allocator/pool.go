package allocator

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/ipam/ranges"
)

// Block sizes: the prefix length of the blocks nodes claim. They are fixed per address family so
// that every pool of a network agrees on block boundaries.
const (
	BlockBitsIPv4 = 27 // 32 addresses
	BlockBitsIPv6 = 122
)

// Pool is a range as the allocator uses it: its IPPool name, the network it belongs to and its
// address arithmetic.
type Pool struct {
	// Name is the IPPool's name, derived from the network and the range.
	Name string
	// Network is network_name ("" for none).
	Network string
	// Range is the address arithmetic.
	Range *ranges.Range
	// Sticky keeps an address for the pod's namespace/name after DEL for StickyTTL.
	Sticky    bool
	StickyTTL time.Duration
}

// NewPool names the pool of range r in network.
func NewPool(network string, r *ranges.Range) Pool {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s", network, r.String())
	return Pool{
		Name:    fmt.Sprintf("%s-%s-%08x", NetworkKey(network), prefixName(r.Subnet()), h.Sum32()),
		Network: network,
		Range:   r,
	}
}

// PoolFromObject rebuilds a Pool from its IPPool, e.g. in the reconciler or the extender.
func PoolFromObject(p *v1alpha1.IPPool) (Pool, error) {
	spec := ranges.Spec{Range: p.Spec.Range, RangeStart: p.Spec.RangeStart, RangeEnd: p.Spec.RangeEnd, Exclude: p.Spec.Exclude, Gateway: p.Spec.Gateway}
	r, err := ranges.Parse(spec)
	if err != nil {
		return Pool{}, fmt.Errorf("IPPool %s has an invalid range: %w", p.Name, err)
	}
	return Pool{Name: p.Name, Network: p.Spec.Network, Range: r, Sticky: p.Spec.Sticky}, nil
}

// Object is the IPPool that records p.
func (p Pool) Object() *v1alpha1.IPPool {
	spec := p.Range.Spec()
	obj := &v1alpha1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Labels: map[string]string{v1alpha1.LabelNetwork: NetworkKey(p.Network)}},
		Spec: v1alpha1.IPPoolSpec{
			Network:           p.Network,
			Range:             spec.Range,
			RangeStart:        p.Range.Start().String(),
			RangeEnd:          p.Range.End().String(),
			Exclude:           spec.Exclude,
			BlockPrefixLength: int32(p.BlockBits()),
			Sticky:            p.Sticky,
		},
	}
	obj.Spec.Gateway = spec.Gateway
	return obj
}

// BlockBits is the prefix length of the pool's blocks.
func (p Pool) BlockBits() int {
	if p.Range.Is4() {
		return BlockBitsIPv4
	}
	return BlockBitsIPv6
}

// BlockName is the name of the IPBlock holding cidr in network.
func BlockName(network string, cidr netip.Prefix) string {
	return NetworkKey(network) + "-" + prefixName(cidr)
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// NetworkKey is the label value and name prefix of a network: "cluster" for none, the name when
// it is a short DNS label, else a hash of it.
func NetworkKey(network string) string {
	if network == "" {
		return "cluster"
	}
	if network != "cluster" && dnsLabel.MatchString(network) {
		return network
	}
	h := fnv.New32a()
	h.Write([]byte(network))
	return fmt.Sprintf("n%08x", h.Sum32())
}

func prefixName(p netip.Prefix) string {
	a := p.Addr()
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "-") + "-" + fmt.Sprint(p.Bits())
	}
	return strings.ReplaceAll(a.StringExpanded(), ":", "") + "-" + fmt.Sprint(p.Bits())
}
