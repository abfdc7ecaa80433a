package cniinstall

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
)

// Install copies every regular file of from into to (created if missing) with mode 0755,
// replacing each atomically. It returns the names installed.
func Install(ctx context.Context, from, to string) ([]string, error) {
	ents, err := os.ReadDir(from)
	if err != nil {
		return nil, fmt.Errorf("reading the binaries to install in %s: %w", from, err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return nil, fmt.Errorf("creating the CNI bin directory %s (is the hostPath mounted?): %w", to, err)
	}
	var done []string
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyAtomic(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return done, err
		}
		logr.FromContextOrDiscard(ctx).Info("installed a CNI binary", "name", e.Name(), "dir", to)
		done = append(done, e.Name())
	}
	if len(done) == 0 {
		return nil, fmt.Errorf("no binary to install in %s", from)
	}
	return done, nil
}

func copyAtomic(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	if err = tmp.Chmod(0o755); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("installing %s: %w", dst, err)
	}
	return nil
}
