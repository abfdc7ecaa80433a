package allocator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// FileLocker is the production Locker: an exclusive flock(2) on Dir/<key>.lock. The kernel drops
// the lock when its process dies, so a plugin killed mid-ADD never leaves the node locked.
type FileLocker struct {
	// Dir holds the lock files; it is created when missing.
	Dir string
}

var _ Locker = FileLocker{}

// Lock takes the lock, or returns ctx's error if ctx is done first.
func (l FileLocker) Lock(ctx context.Context, key string) (func(), error) {
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the lock directory %s (set lock_dir to a writable directory): %w", l.Dir, err)
	}
	path := filepath.Join(l.Dir, key+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file %s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		// The goroutine may still get the lock: closing the file releases it then.
		go func() { <-done; f.Close() }()
		return nil, fmt.Errorf("waiting for the node lock %s: %w", path, ctx.Err())
	}
}
