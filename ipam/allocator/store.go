package allocator

import (
	"context"
	"errors"
	"time"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Errors a Store returns, wrapped, so the allocator can tell a lost race from a failure.
var (
	// ErrNotFound: the object does not exist (any more).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a create lost the race to another writer.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the object changed since it was read (stale resourceVersion).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the API server could not be reached or answered 5xx/429; retry later.
	ErrUnavailable = errors.New("API server unavailable")
)

// Store is the API storage the allocator writes through. Implementations must be safe for
// concurrent use, return objects the caller may modify, and honour the resourceVersion of the
// object passed to UpdateBlock and DeleteBlock (optimistic concurrency).
type Store interface {
	// ListBlocks lists the IPBlocks of a network (its label value); of one node when node != "".
	ListBlocks(ctx context.Context, network, node string) ([]v1alpha1.IPBlock, error)
	// GetBlock returns ErrNotFound when the block does not exist.
	GetBlock(ctx context.Context, name string) (*v1alpha1.IPBlock, error)
	// CreateBlock returns ErrAlreadyExists when another writer created it first.
	CreateBlock(ctx context.Context, b *v1alpha1.IPBlock) (*v1alpha1.IPBlock, error)
	// UpdateBlock returns ErrConflict when b.ResourceVersion is stale, ErrNotFound when deleted.
	UpdateBlock(ctx context.Context, b *v1alpha1.IPBlock) (*v1alpha1.IPBlock, error)
	// DeleteBlock deletes the block only if its resourceVersion is still resourceVersion.
	DeleteBlock(ctx context.Context, name, resourceVersion string) error
	// CreatePool creates the pool; ErrAlreadyExists when it exists.
	CreatePool(ctx context.Context, p *v1alpha1.IPPool) error
}

// Locker serialises the writers of one node. Lock blocks until the lock is held or ctx is done;
// the returned function releases it. A lock must not outlive its process (a killed process must
// not leave it held).
type Locker interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// Clock returns the current time; tests pass a fixed one.
type Clock func() time.Time

// Cache keeps a node's blocks between calls, under the node lock. Load returns false when
// nothing is cached; Save is best effort (a stale or missing cache costs a listing, never a wrong
// answer) and its error is logged. Implementations need not survive reboots.
type Cache interface {
	Load(key string) ([]v1alpha1.IPBlock, bool)
	Save(key string, blocks []v1alpha1.IPBlock) error
}
