package testing

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/plexus-project/plexus/ipam/allocator"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Store is an in-memory allocator.Store with API-server semantics for resourceVersions.
type Store struct {
	mu     sync.Mutex
	rv     int
	blocks map[string]*v1alpha1.IPBlock
	pools  map[string]*v1alpha1.IPPool
	writes int
	// Unavailable, when set, makes every call fail with allocator.ErrUnavailable.
	Unavailable bool
	// WriteDelay, when set, is how long a create or update takes (an API server's latency):
	// what lets concurrent callers queue up behind a write.
	WriteDelay time.Duration
	// panicWith, when set, makes every call panic with it (a bug met on malformed data).
	panicWith string
}

// SetPanic makes every call panic with msg ("" stops it).
func (s *Store) SetPanic(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.panicWith = msg
}

var _ allocator.Store = (*Store)(nil)

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{blocks: map[string]*v1alpha1.IPBlock{}, pools: map[string]*v1alpha1.IPPool{}}
}

func (s *Store) check() error {
	if s.panicWith != "" {
		panic(s.panicWith)
	}
	if s.Unavailable {
		return fmt.Errorf("fake: %w", allocator.ErrUnavailable)
	}
	return nil
}

// ListBlocks implements allocator.Store.
func (s *Store) ListBlocks(_ context.Context, network, node string) ([]v1alpha1.IPBlock, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	var out []v1alpha1.IPBlock
	for _, b := range s.blocks {
		if b.Labels[v1alpha1.LabelNetwork] == network && (node == "" || b.Labels[v1alpha1.LabelNode] == node) {
			out = append(out, *b.DeepCopy())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// GetBlock implements allocator.Store.
func (s *Store) GetBlock(_ context.Context, name string) (*v1alpha1.IPBlock, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	b, ok := s.blocks[name]
	if !ok {
		return nil, fmt.Errorf("ipblock %s: %w", name, allocator.ErrNotFound)
	}
	return b.DeepCopy(), nil
}

// CreateBlock implements allocator.Store.
func (s *Store) CreateBlock(_ context.Context, b *v1alpha1.IPBlock) (*v1alpha1.IPBlock, error) {
	time.Sleep(s.WriteDelay)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	if _, ok := s.blocks[b.Name]; ok {
		return nil, fmt.Errorf("ipblock %s: %w", b.Name, allocator.ErrAlreadyExists)
	}
	return s.store(b), nil
}

// store records a new version of b, as a create or update that succeeded; s.mu is held.
func (s *Store) store(b *v1alpha1.IPBlock) *v1alpha1.IPBlock {
	s.writes++
	s.rv++
	c := b.DeepCopy()
	c.ResourceVersion = strconv.Itoa(s.rv)
	s.blocks[b.Name] = c
	return c.DeepCopy()
}

// Writes is how many block creates and updates succeeded.
func (s *Store) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// UpdateBlock implements allocator.Store.
func (s *Store) UpdateBlock(_ context.Context, b *v1alpha1.IPBlock) (*v1alpha1.IPBlock, error) {
	time.Sleep(s.WriteDelay)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	cur, ok := s.blocks[b.Name]
	if !ok {
		return nil, fmt.Errorf("ipblock %s: %w", b.Name, allocator.ErrNotFound)
	}
	if cur.ResourceVersion != b.ResourceVersion {
		return nil, fmt.Errorf("ipblock %s: %w", b.Name, allocator.ErrConflict)
	}
	return s.store(b), nil
}

// DeleteBlock implements allocator.Store.
func (s *Store) DeleteBlock(_ context.Context, name, resourceVersion string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	cur, ok := s.blocks[name]
	if !ok {
		return fmt.Errorf("ipblock %s: %w", name, allocator.ErrNotFound)
	}
	if resourceVersion != "" && cur.ResourceVersion != resourceVersion {
		return fmt.Errorf("ipblock %s: %w", name, allocator.ErrConflict)
	}
	delete(s.blocks, name)
	return nil
}

// CreatePool implements allocator.Store.
func (s *Store) CreatePool(_ context.Context, p *v1alpha1.IPPool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if _, ok := s.pools[p.Name]; ok {
		return fmt.Errorf("ippool %s: %w", p.Name, allocator.ErrAlreadyExists)
	}
	s.pools[p.Name] = p.DeepCopy()
	return nil
}

// Blocks returns a copy of every block.
func (s *Store) Blocks() []v1alpha1.IPBlock {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []v1alpha1.IPBlock
	for _, b := range s.blocks {
		out = append(out, *b.DeepCopy())
	}
	return out
}

// Pools returns the names of the pools created.
func (s *Store) Pools() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.pools {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
