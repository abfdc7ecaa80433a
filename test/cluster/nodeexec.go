package cluster

import (
	"context"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
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
