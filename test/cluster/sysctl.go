package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// kubeletSysctls are the global kernel settings kubelet sets on start
// (setupKernelTunables): not namespaced, so the host's values are saved before the first
// kubelet starts and put back by Down.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// saveSysctls records the host's values of kubeletSysctls in the state.
func (c *Cluster) saveSysctls() error {
	vals := map[string]string{}
	for _, k := range kubeletSysctls {
		b, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			return fmt.Errorf("reading sysctl %s: %w", k, err)
		}
		vals[k] = strings.TrimSpace(string(b))
	}
	return c.state.record(func(s *state) { s.Sysctls = vals })
}

// restoreSysctls writes back the values saveSysctls recorded.
func restoreSysctls(vals map[string]string) error {
	var errs []error
	for k, v := range vals {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring sysctl %s to %s: %w", k, v, err))
		}
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
