package sriov

import (
	"encoding/json"
	"fmt"
	"path/filepath"
)

// Node settings: where they come from. A NAD never chooses host paths or the PF backend.
const (
	// DefaultNodeConfigPath is the node's settings file (written by the DaemonSet or the sandbox).
	DefaultNodeConfigPath = "/etc/plexus/sriov.json"
	// NodeConfigEnv, set in the container runtime's environment, names another settings file.
	NodeConfigEnv = "PLEXUS_SRIOV_CONFIG"
)

// PF backends a node may choose.
const (
	BackendNetlink  = "netlink"
	BackendRecorder = "recorder"
)

// NodeSettings are the node-level settings of plexus-sriov: they come from the node's file
// (DefaultNodeConfigPath, or the file NodeConfigEnv names), never from the network
// configuration, because they choose host paths and how the host is changed.
type NodeSettings struct {
	// SysfsRoot is where VFs are found. Defaults to /sys; the sandbox points it at its fake tree.
	SysfsRoot string `json:"sysfsRoot"`
	// PFBackend is how VF settings reach the PF: "netlink" (default, the real NIC) or
	// "recorder" (emulated NICs: files under the PF's directory of SysfsRoot).
	PFBackend string `json:"pfBackend"`
	// StateDir holds the per-VF locks, ownership records and attachment cache. Defaults to
	// /var/lib/cni/plexus-sriov (it must survive plugin crashes; /var/lib/cni is kept across
	// reboots by most distributions, which is right: DEL after a reboot still finds it).
	StateDir string `json:"stateDir"`
}

// ParseNodeSettings reads the node's settings file; nil or empty content gives the defaults.
func ParseNodeSettings(b []byte) (NodeSettings, error) {
	var s NodeSettings
	if len(b) > 0 {
		if err := json.Unmarshal(b, &s); err != nil {
			return s, fmt.Errorf("parsing the node's plexus-sriov settings: %w", err)
		}
	}
	if s.SysfsRoot == "" {
		s.SysfsRoot = "/sys"
	}
	if s.PFBackend == "" {
		s.PFBackend = BackendNetlink
	}
	if s.StateDir == "" {
		s.StateDir = "/var/lib/cni/plexus-sriov"
	}
	switch s.PFBackend {
	case BackendNetlink, BackendRecorder:
	default:
		return s, fmt.Errorf("node settings: pfBackend %q is not %q or %q", s.PFBackend, BackendNetlink, BackendRecorder)
	}
	for field, p := range map[string]string{"sysfsRoot": s.SysfsRoot, "stateDir": s.StateDir} {
		if !filepath.IsAbs(p) {
			return s, fmt.Errorf("node settings: %s %q is not an absolute path", field, p)
		}
	}
	return s, nil
}
