package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/repo"
)

// The sandbox installs Plexus as the Helm release ReleaseName of charts/plexus in
// PlexusNamespace.
const (
	ReleaseName     = "plexus"
	PlexusNamespace = "plexus-system"
)

// SchedulerName is the chart's second scheduler (scheduler.name), which the webhook gives the
// pods that select networks.
const SchedulerName = "plexus-scheduler"

// DaemonUser is plexus-daemon's identity in the sandbox: the chart's ServiceAccount.
const DaemonUser = "system:serviceaccount:" + PlexusNamespace + ":plexus-daemon"

// part is a part of the chart the sandbox can leave out: a values group with an enabled toggle,
// or the scheduler wiring (scheduler.mode secondary or none).
type part string

const (
	partDevicePlugin part = "devicePlugin"
	partController   part = "controller"
	partWebhook      part = "webhook"
	partScheduler    part = "scheduler"
	partDaemon       part = "daemon"
)

func allParts() map[part]bool {
	return map[part]bool{partDevicePlugin: true, partController: true, partWebhook: true, partScheduler: true, partDaemon: true}
}

// needs are the parts p does not work without: the webhook's certificate comes from
// plexus-controller (certs.mode self-managed, the sandbox's).
func (p part) needs() []part {
	if p == partWebhook {
		return []part{partController}
	}
	return nil
}

// Workload is the Deployment or DaemonSet of the chart that runs a part.
type Workload struct {
	Kind, Name string
	// Component is its pods' app.kubernetes.io/component label.
	Component string
	// ServiceAccount is the identity its pods run under.
	ServiceAccount string
}

func (p part) workload() Workload {
	switch p {
	case partDevicePlugin:
		return Workload{Kind: "DaemonSet", Name: "plexus-deviceplugin", Component: "deviceplugin", ServiceAccount: "plexus-deviceplugin"}
	case partController:
		return Workload{Kind: "Deployment", Name: "plexus-controller", Component: "controller", ServiceAccount: "plexus-controller"}
	case partWebhook:
		return Workload{Kind: "Deployment", Name: "plexus-webhook", Component: "webhook", ServiceAccount: "plexus-webhook"}
	case partScheduler:
		return Workload{Kind: "Deployment", Name: "plexus-scheduler", Component: "scheduler", ServiceAccount: "plexus-scheduler"}
	default:
		return Workload{Kind: "DaemonSet", Name: "plexus-daemon", Component: "daemon", ServiceAccount: "plexus-daemon"}
	}
}

// Workloads are the chart's Deployments and DaemonSets in the sandbox (every part enabled).
func Workloads() []Workload {
	var out []Workload
	for _, p := range []part{partDevicePlugin, partController, partWebhook, partScheduler, partDaemon} {
		out = append(out, p.workload())
	}
	return out
}

// setValue is the --set of p's toggle.
func (p part) setValue(on bool) string {
	if p == partScheduler {
		if on {
			return "scheduler.mode=secondary"
		}
		return "scheduler.mode=none"
	}
	return string(p) + ".enabled=" + strconv.FormatBool(on)
}

// ChartValues are the helm arguments that give charts/plexus of repo the sandbox's values:
// ci/sandbox-values.yaml and the references of the images the sandbox imports on every node
// (Build.Images, Options.SecondSchedulerImage).
func ChartValues(repo string) []string {
	return []string{
		"-f", filepath.Join(repo, "charts", "plexus", "ci", "sandbox-values.yaml"),
		"--set", "image.registry=" + cluster.PlexusImageRegistry,
		"--set", "image.tag=" + cluster.PlexusImageTag,
		"--set", "scheduler.image.repository=" + strings.TrimSuffix(cluster.KubeSchedulerImageRef, ":"+cluster.PlexusImageTag),
		"--set", "scheduler.image.tag=" + cluster.PlexusImageTag,
	}
}

// applyChart installs or upgrades the release with the parts of on enabled and the others left
// out (`helm upgrade --install`); it does not wait: the components' readiness checks do.
func applyChart(ctx context.Context, c *cluster.Cluster, repo string, on map[part]bool) error {
	args := []string{"upgrade", "--install", ReleaseName, filepath.Join(repo, "charts", "plexus"),
		"--namespace", PlexusNamespace, "--create-namespace"}
	args = append(args, ChartValues(repo)...)
	for _, p := range []part{partDevicePlugin, partController, partWebhook, partScheduler, partDaemon} {
		args = append(args, "--set", p.setValue(on[p]))
	}
	if _, err := c.Helm(ctx, args...); err != nil {
		return fmt.Errorf("installing the Plexus chart: %w", err)
	}
	return nil
}

// releaseParts reads which parts the release has enabled (none when there is no release).
func releaseParts(ctx context.Context, c *cluster.Cluster) (map[part]bool, error) {
	out, err := c.Helm(ctx, "list", "--namespace", PlexusNamespace, "--filter", "^"+ReleaseName+"$", "--short")
	if err != nil {
		return nil, err
	}
	on := map[part]bool{}
	if strings.TrimSpace(out) == "" {
		return on, nil
	}
	if out, err = c.Helm(ctx, "get", "values", ReleaseName, "--namespace", PlexusNamespace, "--all", "--output", "json"); err != nil {
		return nil, err
	}
	var groups map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &groups); err != nil {
		return nil, fmt.Errorf("reading the values of release %s: %w", ReleaseName, err)
	}
	for p := range allParts() {
		var g struct {
			Enabled bool   `json:"enabled"`
			Mode    string `json:"mode"`
		}
		if err := json.Unmarshal(groups[string(p)], &g); err != nil {
			return nil, fmt.Errorf("reading value %s of release %s: %w", p, ReleaseName, err)
		}
		on[p] = g.Enabled || (p == partScheduler && g.Mode == "secondary")
	}
	return on, nil
}

// Install installs Plexus command bin in c with the chart and waits until it works, for the
// e2e tests and benchmarks: the release gets bin's part (and what that part needs) besides the
// parts it has. The CNI binaries come with plexus-daemon (its install-cni); plexus-ipam is the
// exception: it grants the node identity of WithPlexus its rights, for plexus-ipam run on the
// nodes without the daemon's IPAM agent (the chart's plexus-ipam uses the agent).
func Install(ctx context.Context, c *cluster.Cluster, bin string) error {
	comp, err := findComponent(bin)
	if err != nil {
		return err
	}
	if bin == "plexus-ipam" {
		return grantNodeIPAM(ctx, c)
	}
	root, err := repo.Root()
	if err != nil {
		return err
	}
	on, err := releaseParts(ctx, c)
	if err != nil {
		return err
	}
	on[comp.part] = true
	for _, p := range comp.part.needs() {
		on[p] = true
	}
	if err := applyChart(ctx, c, root, on); err != nil {
		return err
	}
	return waitReady(ctx, c, comp)
}

// Uninstall undoes Install of bin: the release loses bin's part (and the parts that need it),
// or is uninstalled when no part is left; it returns once their pods are gone. plexus-daemon
// leaves its CNI conflist on the nodes (fail closed): remove CNIConflist to let pods start
// without it.
func Uninstall(ctx context.Context, c *cluster.Cluster, bin string) error {
	comp, err := findComponent(bin)
	if err != nil {
		return err
	}
	if bin == "plexus-ipam" {
		return revokeNodeIPAM(ctx, c)
	}
	on, err := releaseParts(ctx, c)
	if err != nil || len(on) == 0 { // no release: nothing to remove
		return err
	}
	gone := []part{comp.part}
	for p := range on {
		for _, n := range p.needs() {
			if n == comp.part {
				gone = append(gone, p)
			}
		}
	}
	for _, p := range gone {
		on[p] = false
	}
	left := false
	for _, v := range on {
		left = left || v
	}
	if left {
		var root string
		if root, err = repo.Root(); err != nil {
			return err
		}
		err = applyChart(ctx, c, root, on)
	} else {
		_, err = c.Helm(ctx, "uninstall", ReleaseName, "--namespace", PlexusNamespace, "--wait")
	}
	if err != nil {
		return fmt.Errorf("removing %s: %w", bin, err)
	}
	for _, p := range gone {
		if err := waitNoPods(ctx, c, p.workload().Component); err != nil {
			return err
		}
	}
	return nil
}

// waitNoPods waits until no pod of the chart's component is left.
func waitNoPods(ctx context.Context, c *cluster.Cluster, component string) error {
	sel := "app.kubernetes.io/component=" + component + ",app.kubernetes.io/instance=" + ReleaseName
	var left int
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := c.Clientset.CoreV1().Pods(PlexusNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false, nil
		}
		left = len(pods.Items)
		return left == 0, nil
	})
	if err != nil {
		return fmt.Errorf("%d pods of %s still there: %w", left, component, err)
	}
	return nil
}

// WaitReady waits until Plexus command bin, installed with the chart, works: the demo's check
// of it (the device plugin's VFs in every node's allocatable, the daemon's sockets and
// conflist, the webhook answering the API server, the controller's and the second
// scheduler's leases).
func WaitReady(ctx context.Context, c *cluster.Cluster, bin string) error {
	comp, err := findComponent(bin)
	if err != nil {
		return err
	}
	return waitReady(ctx, c, comp)
}

// Components are the Plexus commands the chart runs, in the order the demo checks them.
func Components() []string {
	var out []string
	for _, comp := range components() {
		out = append(out, comp.bin)
	}
	return out
}
