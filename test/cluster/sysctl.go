package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// kubeletSysctls are the global kernel settings kubelet sets on start
// (setupKernelTunables): not namespaced, so the host's values are saved before the first
// kubelet starts and put back by the last Down.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// sysctlsFile holds, while clusters run, the host's values from before the first of them and
// the state directories of the clusters running: the last one down restores the values. (A
// cluster started while another runs would otherwise save the values the other's kubelets set.)
const sysctlsFile = "/run/plexus-sandbox-sysctls.json"

type sharedSysctls struct {
	Originals map[string]string `json:"originals"`
	Clusters  []string          `json:"clusters"`
}

// saveSysctls records the host's values of kubeletSysctls, unless a running cluster did, and
// registers this cluster as one that must go down before they are restored.
func (c *Cluster) saveSysctls() error {
	unlock, err := lockHostDirs()
	if err != nil {
		return err
	}
	defer unlock()
	var shared sharedSysctls
	if b, err := os.ReadFile(sysctlsFile); err == nil {
		if err := json.Unmarshal(b, &shared); err != nil {
			return fmt.Errorf("reading %s: %w (remove it)", sysctlsFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if shared.Originals == nil {
		shared.Originals = KubeletSysctls()
	}
	if !slices.Contains(shared.Clusters, c.dir) {
		shared.Clusters = append(shared.Clusters, c.dir)
	}
	if err := c.state.record(func(s *state) { s.Sysctls = true }); err != nil {
		return err
	}
	b, err := json.Marshal(shared)
	if err != nil {
		return err
	}
	return os.WriteFile(sysctlsFile, b, 0o644)
}

// releaseSysctls unregisters the cluster in dir; the last one restores the saved values.
func releaseSysctls(dir string) error {
	unlock, err := lockHostDirs()
	if err != nil {
		return err
	}
	defer unlock()
	b, err := os.ReadFile(sysctlsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var shared sharedSysctls
	if err := json.Unmarshal(b, &shared); err != nil {
		return fmt.Errorf("reading %s: %w (remove it)", sysctlsFile, err)
	}
	shared.Clusters = slices.DeleteFunc(shared.Clusters, func(d string) bool {
		if d == dir {
			return true
		}
		_, err := os.Stat(filepath.Join(d, stateFile)) // a cluster torn down by hand
		return err != nil
	})
	if len(shared.Clusters) > 0 {
		b, err := json.Marshal(shared)
		if err != nil {
			return err
		}
		return os.WriteFile(sysctlsFile, b, 0o644)
	}
	var errs []error
	for k, v := range shared.Originals {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring sysctl %s to %s: %w", k, v, err))
		}
	}
	if err := os.Remove(sysctlsFile); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// KubeletSysctls reads the host's current values of the global kernel settings kubelet
// changes, for tests to compare before Up and after Down.
func KubeletSysctls() map[string]string {
	vals := map[string]string{}
	for _, k := range kubeletSysctls {
		b, _ := os.ReadFile(filepath.Join("/proc/sys", k))
		vals[k] = strings.TrimSpace(string(b))
	}
	return vals
}

// SysctlsHeld says whether a running cluster still holds the saved kernel settings (they are
// restored when the last cluster goes down).
func SysctlsHeld() bool {
	_, err := os.Stat(sysctlsFile)
	return err == nil
}
