package allocator

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// FileCache is the production Cache: one JSON file per key in Dir, replaced atomically. It is
// only read and written under the node lock of its key.
type FileCache struct {
	Dir string
}

var _ Cache = FileCache{}

// Load implements Cache.
func (c FileCache) Load(key string) ([]v1alpha1.IPBlock, bool) {
	b, err := os.ReadFile(filepath.Join(c.Dir, key+".blocks.json"))
	if err != nil {
		return nil, false
	}
	var blocks []v1alpha1.IPBlock
	if json.Unmarshal(b, &blocks) != nil {
		return nil, false
	}
	return blocks, true
}

// Save implements Cache.
func (c FileCache) Save(key string, blocks []v1alpha1.IPBlock) error {
	b, err := json.Marshal(blocks)
	if err != nil {
		return fmt.Errorf("encoding the block cache %s: %w", key, err)
	}
	path := filepath.Join(c.Dir, key+".blocks.json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the block cache: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the block cache: %w", err)
	}
	return nil
}
