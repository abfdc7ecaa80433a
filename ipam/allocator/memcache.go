package allocator

import (
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"sync"
)

// MemoryCache is the Cache of a long-lived allocator (the node agent): blocks kept in memory,
// copied in and out so that callers may modify what they load.
type MemoryCache struct {
	mu sync.Mutex
	m  map[string][]v1alpha1.IPBlock
}

var _ Cache = (*MemoryCache)(nil)

// Load implements Cache.
func (c *MemoryCache) Load(key string) ([]v1alpha1.IPBlock, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[key]
	if !ok {
		return nil, false
	}
	out := make([]v1alpha1.IPBlock, len(b))
	for i := range b {
		out[i] = *b[i].DeepCopy()
	}
	return out, true
}

// Save implements Cache.
func (c *MemoryCache) Save(key string, blocks []v1alpha1.IPBlock) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]v1alpha1.IPBlock{}
	}
	out := make([]v1alpha1.IPBlock, len(blocks))
	for i := range blocks {
		out[i] = *blocks[i].DeepCopy()
	}
	c.m[key] = out
	return nil
}
