package testing

import (
	"context"
	"sync"

	"github.com/plexus-project/plexus/ipam/allocator"
)

// Locker is an in-process allocator.Locker.
type Locker struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

var _ allocator.Locker = (*Locker)(nil)

// Lock implements allocator.Locker.
func (l *Locker) Lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]chan struct{}{}
	}
	ch, ok := l.locks[key]
	if !ok {
		ch = make(chan struct{}, 1)
		l.locks[key] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
