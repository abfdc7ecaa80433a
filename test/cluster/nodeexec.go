package cluster

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Command runs name on the node: in its network, mount and UTS namespaces (its
// /var/lib/kubelet, its sysfs, its interfaces, its host name). Use absolute paths for binaries
// outside $PATH.
func (n *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append(n.enter(), append([]string{name}, args...)...)...)
}

// enter is the nsenter command line that runs what follows it on the node.
func (n *Node) enter() []string {
	return []string{"nsenter", "-t", fmt.Sprint(n.HolderPID), "-m", "-n", "-u", "--"}
}

// PodPID returns a process of the pod with the given UID running on node n (the pause
// container's or an application container's): /proc/<pid>/ns/net is the pod's network
// namespace. It is found in the node's cgroups (cgroupfs: <node>/kubepods/.../pod<uid>/).
func (n *Node) PodPID(uid string) (int, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return 0, err
	}
	for _, m := range mounts {
		if filepath.Base(m) != "pids" {
			continue
		}
		var pid int
		_ = filepath.WalkDir(filepath.Join(m, n.Name), func(p string, d fs.DirEntry, err error) error {
			if err != nil || pid != 0 || !d.IsDir() || !strings.Contains(p, "/pod"+uid+"/") {
				return nil
			}
			for _, candidate := range cgroupPIDs(strings.TrimPrefix(p, m+"/")) {
				if alive(candidate) {
					pid = candidate
					return fs.SkipAll
				}
			}
			return nil
		})
		if pid != 0 {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process of pod %s in the cgroups of node %s", uid, n.Name)
}

// ProcessPIDs returns the live processes called comm (as /proc/<pid>/comm names them, at most
// 15 characters) in node n's network namespace: a host-network pod's processes, e.g. a
// DaemonSet's on that node.
func (n *Node) ProcessPIDs(comm string) ([]int, error) {
	nodeNet, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", n.HolderPID))
	if err != nil {
		return nil, fmt.Errorf("node %s: its network namespace: %w", n.Name, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(b)) != comm || !alive(pid) {
			continue
		}
		if netns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && netns == nodeNet {
			pids = append(pids, pid)
		}
	}
	// A child the process forked to run a program has its name until it execs: not a process
	// of its own.
	own := pids[:0]
	for _, pid := range pids {
		if !slices.Contains(pids, parentPID(pid)) {
			own = append(own, pid)
		}
	}
	return own, nil
}

// parentPID is pid's parent, or 0 when it cannot be read.
func parentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			ppid, _ := strconv.Atoi(strings.TrimSpace(v))
			return ppid
		}
	}
	return 0
}
