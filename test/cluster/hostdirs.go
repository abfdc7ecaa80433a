package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// createdMarker, inside a host directory a cluster created as a mount point, tells the other
// clusters that it is a sandbox's, to be removed by whichever tears down last.
const createdMarker = ".plexus-sandbox-created"

// hostLockPath is flocked (no file is created) while a cluster creates its host mount points
// and mounts its nodes' directories over them, and while a cluster removes them: removing a
// directory on which another mount namespace has a mount detaches that mount.
const hostLockPath = "/run"

func lockHostDirs() (func(), error) { return lockDir(hostLockPath) }

// mkdirHost creates the mount point p on the host if it is missing, with every missing parent,
// marking and recording each directory it creates; directories another cluster created (marked)
// are recorded too, so that the last cluster down removes them.
func (c *Cluster) mkdirHost(p string) error {
	var chain []string
	for d := p; d != "/"; d = filepath.Dir(d) {
		chain = append([]string{d}, chain...)
	}
	for _, d := range chain {
		_, err := os.Stat(d)
		switch {
		case err == nil:
			if _, err := os.Stat(filepath.Join(d, createdMarker)); err == nil {
				if err := c.state.record(func(s *state) { s.HostDirs = append(s.HostDirs, d) }); err != nil {
					return err
				}
			}
		case errors.Is(err, fs.ErrNotExist):
			if err := c.state.record(func(s *state) { s.HostDirs = append(s.HostDirs, d) }); err != nil {
				return err
			}
			if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := os.WriteFile(filepath.Join(d, createdMarker), nil, 0o644); err != nil {
				return err
			}
		default:
			return err
		}
	}
	return nil
}

// removeHostDirs removes the recorded mount points, deepest first, unless another cluster's
// node still has a mount there or something else was put inside.
func removeHostDirs(dirs []string) error {
	unlock, err := lockHostDirs()
	if err != nil {
		return err
	}
	defer unlock()
	mounted := mountPointsAnywhere()
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		if inUse(d, mounted) {
			continue
		}
		ents, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil || len(ents) > 1 || (len(ents) == 1 && ents[0].Name() != createdMarker) {
			continue // in use: another cluster's subdirectory, or not only ours
		}
		_ = os.Remove(filepath.Join(d, createdMarker))
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("removing the mount point %s that Up created: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// mountPointsAnywhere lists the mount points of every mount namespace on the machine.
func mountPointsAnywhere() map[string]bool {
	out := map[string]bool{}
	seen := map[uint64]bool{}
	for _, pid := range allPIDs() {
		ino, err := nsInode(pid, "mnt")
		if err != nil || seen[ino] {
			continue
		}
		seen[ino] = true
		f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Fields(sc.Text()); len(fields) > 4 {
				out[fields[4]] = true
			}
		}
		f.Close()
	}
	return out
}
