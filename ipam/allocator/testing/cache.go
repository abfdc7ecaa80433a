package testing

import (
	"sync"

	"github.com/plexus-project/plexus/ipam/allocator"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Cache is an in-memory allocator.Cache.
type Cache struct {
	mu sync.Mutex
	m  map[string][]v1alpha1.IPBlock
}

var _ allocator.Cache = (*Cache)(nil)

// Load implements allocator.Cache.
func (c *Cache) Load(key string) ([]v1alpha1.IPBlock, bool) {
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

// Save implements allocator.Cache.
func (c *Cache) Save(key string, blocks []v1alpha1.IPBlock) {
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
}
