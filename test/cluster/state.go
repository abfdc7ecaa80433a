package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// stateFile names the record, in the state directory, of everything Up created on the host.
const stateFile = "state.json"

// state is what Up created outside its state directory, written to disk before each thing is
// created, so that Down can remove it all after a crash of Up, of the demo or of a test.
type state struct {
	mu   sync.Mutex
	path string

	Name string `json:"name"`
	// Owner is the process that ran Up.
	Owner *process `json:"owner,omitempty"`
	// Processes are the long-running processes Up started (control plane, node holders,
	// containerd, kubelet), with their start times to tell them from a reused PID.
	Processes []process `json:"processes,omitempty"`
	// NetNS are named network namespaces (/run/netns/<name>).
	NetNS []string `json:"netns,omitempty"`
	// MountNS are the inode numbers of the nodes' mount namespaces: every process left in one
	// belongs to the cluster.
	MountNS []uint64 `json:"mountNS,omitempty"`
	// Links are host interfaces (bridge, veth host ends).
	Links []string `json:"links,omitempty"`
	// Cgroups are directory names created under every cgroup hierarchy (one per node).
	Cgroups []string `json:"cgroups,omitempty"`
	// HostDirs are empty mount points Up created on the host (deepest last).
	HostDirs []string `json:"hostDirs,omitempty"`
	// Sysctls says the cluster is registered in sysctlsFile (it started kubelets).
	Sysctls bool `json:"sysctls,omitempty"`
}

// process is one started process.
type process struct {
	Name      string `json:"name"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
}

func newState(dir, name string) *state {
	return &state{path: filepath.Join(dir, stateFile), Name: name}
}

// loadState reads the record in dir; a missing record is an empty state.
func loadState(dir string) (*state, error) {
	s := &state{path: filepath.Join(dir, stateFile)}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("reading %s: %w (remove what it lists by hand, then the file)", s.path, err)
	}
	return s, nil
}

// record applies change under the lock and saves the state atomically.
func (s *state) record(change func(s *state)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(s)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("saving the cluster state: %w", err)
	}
	return os.Rename(tmp, s.path)
}
