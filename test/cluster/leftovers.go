package cluster

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PIDs lists the live processes of the cluster: control plane, holders, containerds,
// kubelets, and everything in the nodes' mount namespaces and cgroups (shims, containers).
func (c *Cluster) PIDs() []int { return clusterPIDs(c.state) }

// Leftovers lists what a cluster called name with state in dir still has on the host: links
// and network namespaces named after it, mounts from dir or at the nodes' bind mount points
// (/var/lib/kubelet, /run/containerd, ...), its cgroups in any hierarchy, the mount points Up
// created, and processes whose command line names dir. pids are processes known to be the
// cluster's (from PIDs before Down); those still alive are listed too. After Down it should be
// empty.
func Leftovers(name, dir string, hostDirs []string, pids []int) []string {
	var out []string
	prefix := name + "-"
	if ents, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				out = append(out, "link "+e.Name())
			}
		}
	}
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				out = append(out, "netns "+e.Name())
			}
		}
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 5 {
				continue
			}
			root, mp := fields[3], fields[4]
			hit := strings.HasPrefix(mp, dir+"/") || strings.HasPrefix(root, dir+"/") || strings.HasPrefix(mp, "/run/netns/"+prefix)
			for _, b := range nodeBinds {
				// The host's own /run/netns is a mount point (iproute2 makes it one); a node's
				// bind leaking there would show its root under dir, caught above.
				hit = hit || (mp == b && b != "/run/netns")
			}
			if hit {
				out = append(out, "mount "+mp)
			}
		}
		f.Close()
	}
	if mounts, err := cgroupMounts(); err == nil {
		for _, m := range mounts {
			matches, _ := filepath.Glob(filepath.Join(m, prefix+"node*"))
			for _, x := range matches {
				out = append(out, "cgroup "+x)
			}
		}
	}
	mounted := mountPointsAnywhere()
	for _, d := range hostDirs {
		if _, err := os.Stat(d); err != nil || inUse(d, mounted) {
			continue // gone, or still another cluster's mount point (its Down removes it)
		}
		out = append(out, "directory "+d)
	}
	self := os.Getpid()
	seen := map[int]bool{}
	for _, pid := range pids {
		if alive(pid) {
			seen[pid] = true
			out = append(out, fmt.Sprintf("process %d", pid))
		}
	}
	for _, pid := range allPIDs() {
		if pid == self || seen[pid] || !alive(pid) {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(b), dir+"/") {
			out = append(out, fmt.Sprintf("process %d (%s)", pid, strings.ReplaceAll(string(b), "\x00", " ")))
		}
	}
	return out
}

// HostDirs lists the mount points Up created on the host (Down removes them).
func (c *Cluster) HostDirs() []string {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	return append([]string(nil), c.state.HostDirs...)
}

// PIDsIn lists the live processes of the cluster whose state is in dir (see Cluster.PIDs),
// for a caller that did not run Up.
func PIDsIn(dir string) ([]int, error) {
	s, err := loadState(dir)
	if err != nil {
		return nil, err
	}
	return clusterPIDs(s), nil
}

// inUse says whether d or a directory below it is a mount point in some mount namespace.
func inUse(d string, mounted map[string]bool) bool {
	for m := range mounted {
		if m == d || strings.HasPrefix(m, d+"/") {
			return true
		}
	}
	return false
}
