package allocator

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// ownBlocks returns this node's blocks of a network: from the cache unless fresh is asked for.
func (a *Allocator) ownBlocks(ctx context.Context, netKey string, fresh bool) ([]v1alpha1.IPBlock, error) {
	key := netKey + "." + a.opts.Node
	if !fresh && a.opts.Cache != nil {
		if blocks, ok := a.opts.Cache.Load(key); ok {
			return blocks, nil
		}
	}
	blocks, err := a.store.ListBlocks(ctx, netKey, a.opts.Node)
	if err != nil {
		return nil, fmt.Errorf("listing the IP blocks of node %s: %w", a.opts.Node, err)
	}
	a.save(ctx, key, blocks)
	return blocks, nil
}

// remember records a block this node wrote, if it is one of its own.
func (a *Allocator) remember(ctx context.Context, netKey string, b *v1alpha1.IPBlock) {
	if a.opts.Cache == nil || b.Spec.Node != a.opts.Node {
		return
	}
	key := netKey + "." + a.opts.Node
	blocks, ok := a.opts.Cache.Load(key)
	if !ok {
		return // the next call lists
	}
	replaced := false
	for i := range blocks {
		if blocks[i].Name == b.Name {
			blocks[i], replaced = *b, true
		}
	}
	if !replaced {
		blocks = append(blocks, *b)
	}
	a.save(ctx, key, blocks)
}

// forget drops a deleted block from the cache.
func (a *Allocator) forget(ctx context.Context, netKey, name string) {
	if a.opts.Cache == nil {
		return
	}
	key := netKey + "." + a.opts.Node
	blocks, ok := a.opts.Cache.Load(key)
	if !ok {
		return
	}
	out := blocks[:0]
	for _, b := range blocks {
		if b.Name != name {
			out = append(out, b)
		}
	}
	a.save(ctx, key, out)
}

// save writes the cache, logging a failure: a cache that cannot be written costs a listing per
// call, which an operator should hear about.
func (a *Allocator) save(ctx context.Context, key string, blocks []v1alpha1.IPBlock) {
	if a.opts.Cache == nil {
		return
	}
	if err := a.opts.Cache.Save(key, blocks); err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "the node's block cache could not be written; every call lists the node's blocks until it can", "key", key)
	}
}
