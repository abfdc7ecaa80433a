package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/test/cluster"
)

// Report is what the demo found on the cluster, read from live state: the pods' containers
// (environment, interfaces) and the API objects.
type Report struct {
	// Components says what became of every Plexus component.
	Components []ComponentStatus
	// Pods are the example pods, in the order of docs/examples.
	Pods []PodReport
}

// ComponentStatus is what became of one component.
type ComponentStatus struct {
	Bin, Role string
	// Installed is set when the demo installed it and it became ready.
	Installed bool
	// Note says how it runs, or why it is pending.
	Note string
}

// Installed says whether component bin is installed.
func (r *Report) Installed(bin string) bool {
	return slices.ContainsFunc(r.Components, func(s ComponentStatus) bool { return s.Bin == bin && s.Installed })
}

// PodReport is what one example pod got.
type PodReport struct {
	Pod, Node string
	// Scheduler is the scheduler that placed it (spec.schedulerName).
	Scheduler string
	// PodIP is the pod's IP as kubelet reports it (the default network's).
	PodIP string
	// Resources lists the extended resources of its container ("intel.com/x: 2").
	Resources string
	// WantVFs is how many SR-IOV VFs it asked for; VFs are the PCI addresses the device plugin
	// gave it (PCIDEVICE_* in its container).
	WantVFs int64
	VFs     []string
	// Selected are the networks it selects, from its networks annotation.
	Selected []*network.Selection
	// Status is its network-status annotation; StatusErr says why it could not be read.
	Status    []network.Status
	StatusErr error
	// Addrs are the addresses inside the pod, by interface (`ip -o addr`, without prefix
	// length; link-local IPv6 left out).
	Addrs map[string][]string
}

// report reads what each example pod got: its SR-IOV resources, the VFs the device plugin gave
// it (the PCIDEVICE_* variables in its container), its network-status and the addresses its
// interfaces hold.
func (ex *example) report(ctx context.Context, c *cluster.Cluster) []PodReport {
	var rows []PodReport
	for _, p := range ex.pods {
		r := PodReport{Pod: p.Name, Node: p.Spec.NodeName, Scheduler: p.Spec.SchedulerName, PodIP: p.Status.PodIP, Addrs: map[string][]string{}}
		var res []string
		for name, q := range p.Spec.Containers[0].Resources.Limits {
			if strings.Contains(string(name), "/") {
				res = append(res, fmt.Sprintf("%s: %s", name, q.String()))
				r.WantVFs += q.Value()
			}
		}
		sort.Strings(res)
		r.Resources = strings.Join(res, ", ")
		if env, err := kubectl(ctx, c, "", "exec", "-n", p.Namespace, p.Name, "--", "env"); err == nil {
			for _, l := range strings.Split(env, "\n") {
				if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "PCIDEVICE_") && !strings.HasSuffix(k, "_INFO") {
					r.VFs = append(r.VFs, strings.Split(v, ",")...)
				}
			}
		}
		r.Selected, _ = network.ParseSelections(p.Annotations[network.NetworksAnnotation], p.Namespace)
		r.Status, r.StatusErr = network.ReadStatus(p)
		if out, err := kubectl(ctx, c, "", "exec", "-n", p.Namespace, p.Name, "--", "ip", "-o", "addr", "show"); err == nil {
			r.Addrs = parseIPAddr(out)
		}
		rows = append(rows, r)
	}
	return rows
}

// parseIPAddr reads `ip -o addr show`: "2: eth0@if9    inet 198.19.1.4/24 brd ... scope global eth0".
func parseIPAddr(out string) map[string][]string {
	addrs := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || (f[2] != "inet" && f[2] != "inet6") || f[1] == "lo" {
			continue
		}
		ip, _, _ := strings.Cut(f[3], "/")
		if strings.HasPrefix(ip, "fe80:") {
			continue
		}
		name, _, _ := strings.Cut(f[1], "@")
		addrs[name] = append(addrs[name], ip)
	}
	return addrs
}

// interfaces is the report's INTERFACES column: network-status when the pod has one, else
// what is inside the pod.
func (r PodReport) interfaces(cniInstalled bool) string {
	var ifs []string
	if len(r.Status) > 0 {
		for _, s := range r.Status {
			ifs = append(ifs, fmt.Sprintf("%s %s (%s)", s.Interface, strings.Join(s.IPs, ","), s.Name))
		}
		return strings.Join(ifs, "; ")
	}
	names := make([]string, 0, len(r.Addrs))
	for n := range r.Addrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ifs = append(ifs, n+" "+strings.Join(r.Addrs[n], ","))
	}
	note := " (no network-status: the Plexus CNI is pending)"
	if cniInstalled {
		note = " (no network-status)"
	}
	return strings.Join(ifs, "; ") + note
}

func printTable(w io.Writer, rep *Report) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD\tNODE\tRESOURCES\tVFs (PCI)\tINTERFACES")
	for _, r := range rep.Pods {
		vfs := strings.Join(r.VFs, ",")
		if vfs == "" {
			vfs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Pod, r.Node, r.Resources, vfs, r.interfaces(rep.Installed("plexus")))
	}
	tw.Flush()
}

// check fails when a pod did not get what the installed components should have given it:
// with the device plugin, as many of its node's VFs as it asked for; with the plexus CNI,
// eth0 with the pod IP and one interface with an address per selected network, each in the
// network-status and inside the pod; with plexus-sriov, the VF of each SR-IOV network among
// the pod's; with the webhook and the extender, placed by the chart's second scheduler.
func check(c *cluster.Cluster, rep *Report, resources map[string]string) error {
	var errs []error
	for _, r := range rep.Pods {
		if rep.Installed("plexus-webhook") && rep.Installed("plexus-extender") && r.Scheduler != SchedulerName {
			errs = append(errs, fmt.Errorf("pod %s was placed by %q, want %s (the webhook sends pods with networks to it)", r.Pod, r.Scheduler, SchedulerName))
		}
		if rep.Installed("plexus-deviceplugin") {
			errs = append(errs, checkVFs(c, r)...)
		}
		if rep.Installed("plexus") {
			errs = append(errs, checkNetworks(r, resources, rep.Installed("plexus-sriov"))...)
		}
	}
	return errors.Join(errs...)
}

func checkVFs(c *cluster.Cluster, r PodReport) []error {
	if int64(len(r.VFs)) != r.WantVFs {
		return []error{fmt.Errorf("pod %s asked for %d VFs and got %v", r.Pod, r.WantVFs, r.VFs)}
	}
	var errs []error
	for _, pci := range r.VFs {
		if !nodeHasVF(c, r.Node, pci) {
			errs = append(errs, fmt.Errorf("pod %s on %s got VF %s, which is not one of that node's", r.Pod, r.Node, pci))
		}
	}
	return errs
}

// checkNetworks checks a pod's networks; resources maps a NAD (ns/name) to its resourceName.
func checkNetworks(r PodReport, resources map[string]string, sriov bool) []error {
	if r.StatusErr != nil {
		return []error{r.StatusErr}
	}
	if len(r.Status) == 0 {
		return []error{fmt.Errorf("pod %s has no %s annotation: plexus-daemon did not write it", r.Pod, network.NetworkStatusAnnotation)}
	}
	var errs []error
	byIf := map[string]network.Status{}
	for _, s := range r.Status {
		byIf[s.Interface] = s
		for _, ip := range s.IPs {
			if !slices.Contains(r.Addrs[s.Interface], ip) {
				errs = append(errs, fmt.Errorf("pod %s: network-status gives %s %s (network %s), which the pod does not have (it has %v)", r.Pod, s.Interface, ip, s.Name, r.Addrs))
			}
		}
	}
	if eth0, ok := byIf["eth0"]; !ok || !eth0.Default || !slices.Contains(eth0.IPs, r.PodIP) {
		errs = append(errs, fmt.Errorf("pod %s: network-status has no default eth0 with the pod IP %s: %+v", r.Pod, r.PodIP, r.Status))
	}
	for i, sel := range r.Selected {
		want := sel.InterfaceRequest
		if want == "" {
			want = fmt.Sprintf("net%d", i+1)
		}
		s, ok := byIf[want]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("pod %s: network %s has no interface %s in network-status", r.Pod, sel.Key(), want))
			continue
		case s.Name != sel.Key():
			errs = append(errs, fmt.Errorf("pod %s: interface %s is network %s in network-status, want %s", r.Pod, want, s.Name, sel.Key()))
		case len(s.IPs) == 0:
			errs = append(errs, fmt.Errorf("pod %s: network %s (%s) has no address", r.Pod, sel.Key(), want))
		}
		if resources[sel.Key()] == "" || !sriov {
			continue
		}
		if s.DeviceInfo == nil || s.DeviceInfo.Pci == nil || !slices.Contains(r.VFs, s.DeviceInfo.Pci.PciAddress) {
			errs = append(errs, fmt.Errorf("pod %s: SR-IOV network %s (%s) has device-info %+v, not one of the pod's VFs %v", r.Pod, sel.Key(), want, s.DeviceInfo, r.VFs))
		}
	}
	return errs
}

func nodeHasVF(c *cluster.Cluster, node, pci string) bool {
	for _, n := range c.Nodes {
		if n.Name == node {
			return slices.ContainsFunc(n.VFs, func(vf cluster.VF) bool { return vf.PCI == pci })
		}
	}
	return false
}
