package demo

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-project/plexus/cni/conflist"
	"github.com/plexus-project/plexus/cni/wire"
	"github.com/plexus-project/plexus/test/cluster"
)

// SRIOVResource is the resource the device plugin serves in the sandbox (every emulated VF, by
// charts/plexus/ci/sandbox-values.yaml's resourceList) and the example NADs name.
const SRIOVResource = "intel.com/sriov_netdevice"

// component is a Plexus binary and the part of the chart that runs it.
type component struct {
	// bin is the command under cmd/.
	bin string
	// role says what it does, for the report.
	role string
	// part is the part of the chart that runs it.
	part part
	// cni marks a CNI plugin binary, which plexus-daemon's install-cni init container puts in
	// every node's /opt/cni/bin.
	cni bool
	// ready waits until the installed component works.
	ready func(ctx context.Context, c *cluster.Cluster) error
}

// components lists every Plexus binary of the design, in the order their readiness is checked
// (plexus-controller issues the webhook's certificate).
func components() []component {
	return []component{
		{bin: "plexus-deviceplugin", role: "SR-IOV device plugin (DaemonSet)", part: partDevicePlugin, ready: devicePluginReady},
		{bin: "plexus-controller", role: "IPAM and certificate reconcilers (Deployment)", part: partController, ready: controllerReady},
		{bin: "plexus-webhook", role: "admission webhook (Deployment)", part: partWebhook, ready: webhookReady},
		{bin: "plexus-extender", role: "scheduler extender (second kube-scheduler)", part: partScheduler, ready: schedulerReady},
		{bin: "plexus-daemon", role: "CNI server and IPAM agent (DaemonSet)", part: partDaemon, ready: daemonReady},
		{bin: "plexus", role: "CNI meta-plugin", part: partDaemon, cni: true, ready: cniReady},
		{bin: "plexus-sriov", role: "SR-IOV CNI plugin", part: partDaemon, cni: true},
		{bin: "plexus-ipam", role: "IPAM CNI plugin", part: partDaemon, cni: true},
	}
}

func findComponent(bin string) (component, error) {
	for _, comp := range components() {
		if comp.bin == bin {
			return comp, nil
		}
	}
	return component{}, fmt.Errorf("%s is not a Plexus component", bin)
}

// install installs the chart with every part and waits for each component; it reports every
// component: how it runs, or why it is not ready (then the error has the logs of each one that
// is not).
func install(ctx context.Context, c *cluster.Cluster, repo string) ([]ComponentStatus, error) {
	if err := applyChart(ctx, c, repo, allParts()); err != nil {
		return nil, err
	}
	var out []ComponentStatus
	var errs []error
	for _, comp := range components() {
		s := ComponentStatus{Bin: comp.bin, Role: comp.role}
		if err := ready(ctx, c, comp); err != nil {
			s.Note = "NOT READY: " + err.Error()
			errs = append(errs, notReady(ctx, c, comp, err))
			out = append(out, s)
			continue
		}
		s.Installed = true
		w := comp.part.workload()
		s.Note = fmt.Sprintf("%s %s/%s as ServiceAccount %s", w.Kind, PlexusNamespace, w.Name, w.ServiceAccount)
		if comp.cni {
			s.Note = "in every node's /opt/cni/bin, from plexus-daemon's install-cni (" + cluster.PlexusImageRef("plexus-cni") + ")"
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

func ready(ctx context.Context, c *cluster.Cluster, comp component) error {
	if comp.ready == nil {
		return nil
	}
	return comp.ready(ctx, c)
}

// waitReady runs comp's readiness check; when it fails, the error carries the logs of the
// part's pods.
func waitReady(ctx context.Context, c *cluster.Cluster, comp component) error {
	if err := ready(ctx, c, comp); err != nil {
		return notReady(ctx, c, comp, err)
	}
	return nil
}

// notReady is comp's readiness failure err with the logs of its part's pods.
func notReady(ctx context.Context, c *cluster.Cluster, comp component, err error) error {
	sel := "app.kubernetes.io/component=" + comp.part.workload().Component
	logs, _ := kubectl(ctx, c, "", "logs", "-n", PlexusNamespace, "-l", sel, "--all-containers", "--tail=15", "--prefix")
	return fmt.Errorf("%s installed but not working: %w; its logs:\n%s", comp.bin, err, logs)
}

// daemonReady waits until plexus-daemon runs on every node and its IPAM agent listens there.
func daemonReady(ctx context.Context, c *cluster.Cluster) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if !daemonSetReady(ctx, c, "plexus-daemon") {
			last = "pods not ready on every node"
			return false, nil
		}
		for _, n := range c.Nodes {
			if err := n.Command(ctx, "test", "-S", IPAMAgentSocket).Run(); err != nil {
				last = fmt.Sprintf("no IPAM agent socket %s on node %s", IPAMAgentSocket, n.Name)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s (kubectl -n %s logs ds/plexus-daemon): %w", last, PlexusNamespace, err)
	}
	return nil
}

// daemonSetReady says whether DaemonSet name of PlexusNamespace has a ready, up-to-date pod on
// every node.
func daemonSetReady(ctx context.Context, c *cluster.Cluster, name string) bool {
	ds, err := c.Clientset.AppsV1().DaemonSets(PlexusNamespace).Get(ctx, name, metav1.GetOptions{})
	return err == nil && ds.Status.ObservedGeneration >= ds.Generation &&
		ds.Status.DesiredNumberScheduled == int32(len(c.Nodes)) && ds.Status.UpdatedNumberScheduled == ds.Status.DesiredNumberScheduled &&
		ds.Status.NumberReady == ds.Status.DesiredNumberScheduled
}

// CNISocket is where plexus-daemon's CNI server listens on every node, for the plexus shim.
const CNISocket = wire.DefaultSocketDir + "/" + wire.SocketName

// CNIConflist is the file plexus-daemon writes on every node so that the runtime calls the
// plexus shim for every pod, wrapping the node's bridge network (cluster.DefaultNetworkName).
const CNIConflist = "/etc/cni/net.d/" + conflist.DefaultFileName

// cniReady waits until, on every node, plexus-daemon's CNI server listens and its conflist
// is the runtime's first: the plexus shim is then called for every new pod.
func cniReady(ctx context.Context, c *cluster.Cluster) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, n := range c.Nodes {
			if err := n.Command(ctx, "test", "-S", CNISocket).Run(); err != nil {
				last = fmt.Sprintf("no CNI server socket %s on node %s", CNISocket, n.Name)
				return false, nil
			}
			out, err := n.Command(ctx, "ls", "/etc/cni/net.d").Output()
			if err != nil {
				last = fmt.Sprintf("listing /etc/cni/net.d on node %s: %v", n.Name, err)
				return false, nil
			}
			files := strings.Fields(string(out))
			if len(files) == 0 || files[0] != conflist.DefaultFileName {
				last = fmt.Sprintf("node %s: /etc/cni/net.d holds %v, want %s first", n.Name, files, conflist.DefaultFileName)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s (plexus-daemon writes it; see `kubectl -n %s logs ds/plexus-daemon`): %w", last, PlexusNamespace, err)
	}
	return nil
}

// devicePluginReady waits until the plugin's pods are ready on every node and every node
// advertises the emulated VFs.
func devicePluginReady(ctx context.Context, c *cluster.Cluster) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if !daemonSetReady(ctx, c, "plexus-deviceplugin") {
			last = "pods not ready on every node"
			return false, nil
		}
		for _, n := range c.Nodes {
			node, err := c.Clientset.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			q := node.Status.Allocatable[corev1.ResourceName(SRIOVResource)]
			if q.Value() != int64(len(n.VFs)) {
				last = fmt.Sprintf("node %s allocatable %s = %s, want %d", n.Name, SRIOVResource, q.String(), len(n.VFs))
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s (see `kubectl -n %s logs ds/plexus-deviceplugin`): %w", last, PlexusNamespace, err)
	}
	return nil
}

// kubectl runs the cluster's kubectl with stdin.
func kubectl(ctx context.Context, c *cluster.Cluster, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir(), "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
