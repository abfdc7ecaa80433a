package conflist

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// Writer keeps 00-plexus.conflist in the conf dir in step with the cluster network.
type Writer struct {
	// ConfDir is the runtime's CNI conf dir (e.g. /etc/cni/net.d).
	ConfDir string
	// FileName is the file written there (default DefaultFileName).
	FileName string
	// Source finds the cluster network (default: FindInDir over ConfDir).
	Source Source
	// Shim is what the shim's entry carries.
	Shim ShimOptions
	// Resync is how often the cluster network is read again besides file events (default 10s;
	// it catches a configured file outside ConfDir or a changed NAD).
	Resync time.Duration

	current atomic.Pointer[ClusterNetwork]
}

// Path is the file the Writer writes.
func (w *Writer) Path() string {
	name := w.FileName
	if name == "" {
		name = DefaultFileName
	}
	return filepath.Join(w.ConfDir, name)
}

// Current is the cluster network of the last successful Sync; nil before.
func (w *Writer) Current() *ClusterNetwork { return w.current.Load() }

// Ready reports whether the cluster network is known and the conflist is in place.
func (w *Writer) Ready() error {
	if w.Current() == nil {
		return fmt.Errorf("the cluster network is not known yet")
	}
	if _, err := os.Stat(w.Path()); err != nil {
		return fmt.Errorf("the CNI config %s is missing: %w", w.Path(), err)
	}
	return nil
}

// Sync finds the cluster network and (re)writes the conflist for it. When the cluster network
// cannot be found, the last one known stays in use and the file stays as it is.
func (w *Writer) Sync(ctx context.Context) error {
	src := w.Source
	if src == nil {
		own := filepath.Base(w.Path())
		src = func(context.Context) (*ClusterNetwork, error) { return FindInDir(w.ConfDir, own) }
	}
	cluster, err := src(ctx)
	if err != nil {
		return err
	}
	content, err := Render(cluster, w.Shim)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(w.ConfDir, 0o755); err != nil {
		return fmt.Errorf("creating the CNI conf dir %s: %w", w.ConfDir, err)
	}
	wrote, err := Write(w.Path(), content)
	if err != nil {
		return err
	}
	prev := w.current.Swap(cluster)
	if wrote || prev == nil || prev.Source != cluster.Source {
		logr.FromContextOrDiscard(ctx).Info("cluster network in use", "source", cluster.Source,
			"network", cluster.Config.Name, "cniVersion", cluster.Config.CNIVersion, "conflist", w.Path(), "rewritten", wrote)
	}
	return nil
}

// Run syncs now, then whenever a file in the conf dir changes and every Resync, until ctx
// ends. It leaves the conflist in place when it returns.
func (w *Writer) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	resync := w.Resync
	if resync <= 0 {
		resync = 10 * time.Second
	}
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching the CNI conf dir: %w", err)
	}
	defer watcher.Close()
	if err := os.MkdirAll(w.ConfDir, 0o755); err != nil {
		return fmt.Errorf("creating the CNI conf dir %s: %w", w.ConfDir, err)
	}
	if err := watcher.Add(w.ConfDir); err != nil {
		return fmt.Errorf("watching the CNI conf dir %s: %w", w.ConfDir, err)
	}
	sync := func() {
		if err := w.Sync(ctx); err != nil {
			log.Error(err, "cannot update the plexus CNI config; the last one stays in use", "conflist", w.Path())
		}
	}
	sync()
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			sync()
		case ev := <-watcher.Events:
			if filepath.Base(ev.Name) == filepath.Base(w.Path()) && ev.Op&(fsnotify.Remove|fsnotify.Rename) == 0 {
				continue // our own write
			}
			sync()
		case err := <-watcher.Errors:
			log.Error(err, "watching the CNI conf dir", "dir", w.ConfDir)
		}
	}
}
