package demo

import (
	"context"
	"embed"
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

//go:embed manifests/*.yaml
var manifests embed.FS

// SRIOVResource is the resource the demo's device plugin configuration serves (every emulated
// VF) and the example NADs name.
const SRIOVResource = "intel.com/sriov_netdevice"

// component is a Plexus binary and how the demo installs it.
type component struct {
	// bin is the command under cmd/.
	bin string
	// role says what it does, for the report.
	role string
	// manifest is the file under manifests/ that installs it (for a CNI plugin, which is
	// copied onto the nodes, its RBAC); "" when none is written yet.
	manifest string
	// cni marks a CNI plugin binary, installed in every node's /opt/cni/bin.
	cni bool
	// setup, when set, runs before the manifest is applied.
	setup func(ctx context.Context, c *cluster.Cluster) error
	// ready waits until the installed component works.
	ready func(ctx context.Context, c *cluster.Cluster) error
}

// components lists every Plexus binary of the design, in install order.
func components() []component {
	return []component{
		{bin: "plexus-deviceplugin", role: "SR-IOV device plugin (DaemonSet)", manifest: "plexus-deviceplugin.yaml", ready: devicePluginReady},
		{bin: "plexus-webhook", role: "admission webhook (Deployment)", manifest: "plexus-webhook.yaml", setup: webhookSetup, ready: webhookReady},
		{bin: "plexus-extender", role: "scheduler extender"},
		{bin: "plexus-controller", role: "IPAM and certificate reconcilers (Deployment)", manifest: "plexus-controller.yaml", setup: ensureNamespace, ready: controllerReady},
		{bin: "plexus-daemon", role: "CNI server and IPAM agent (DaemonSet)", manifest: "plexus-daemon.yaml", ready: daemonReady},
		{bin: "plexus", role: "CNI meta-plugin", cni: true, ready: cniReady},
		{bin: "plexus-sriov", role: "SR-IOV CNI plugin", cni: true},
		{bin: "plexus-ipam", role: "IPAM CNI plugin", cni: true, manifest: "plexus-ipam.yaml"},
	}
}

// install applies the manifests of the built components and waits for them; it reports every
// component, installed or pending and why.
func install(ctx context.Context, c *cluster.Cluster, build *cluster.Build) ([]ComponentStatus, error) {
	var out []ComponentStatus
	for _, comp := range components() {
		s := ComponentStatus{Bin: comp.bin, Role: comp.role}
		_, built := build.Binaries[comp.bin]
		switch {
		case !built:
			s.Note = "pending: cmd/" + comp.bin + " does not exist yet"
		case comp.manifest == "" && !comp.cni:
			s.Note = "built (image " + cluster.PlexusImageRef(comp.bin) + " on every node); its manifest is pending"
		default:
			if err := installComponent(ctx, c, comp); err != nil {
				return nil, err
			}
			s.Installed = true
			s.Note = "running from " + cluster.PlexusImageRef(comp.bin)
			if comp.cni {
				s.Note = "installed in every node's /opt/cni/bin"
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func installComponent(ctx context.Context, c *cluster.Cluster, comp component) error {
	if comp.setup != nil {
		if err := comp.setup(ctx, c); err != nil {
			return fmt.Errorf("installing %s: %w", comp.bin, err)
		}
	}
	if comp.manifest != "" {
		y, err := manifests.ReadFile("manifests/" + comp.manifest)
		if err != nil {
			return err
		}
		if _, err := kubectl(ctx, c, string(y), "apply", "-f", "-"); err != nil {
			return fmt.Errorf("installing %s: %w", comp.bin, err)
		}
	}
	if comp.ready != nil {
		if err := comp.ready(ctx, c); err != nil {
			var logs string
			for _, ns := range []string{PlexusNamespace, "kube-system"} {
				if out, lerr := kubectl(ctx, c, "", "logs", "-n", ns, "-l", "app="+comp.bin, "--tail=15", "--prefix"); lerr == nil {
					logs += out
				}
			}
			return fmt.Errorf("%s installed but not working: %w; its logs:\n%s", comp.bin, err, logs)
		}
	}
	return nil
}

// daemonReady waits until plexus-daemon runs on every node and its IPAM agent listens there.
func daemonReady(ctx context.Context, c *cluster.Cluster) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		ds, err := c.Clientset.AppsV1().DaemonSets("kube-system").Get(ctx, "plexus-daemon", metav1.GetOptions{})
		if err != nil || ds.Status.DesiredNumberScheduled != int32(len(c.Nodes)) || ds.Status.NumberReady != ds.Status.DesiredNumberScheduled {
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
		return fmt.Errorf("%s: %w", last, err)
	}
	return nil
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
		return fmt.Errorf("%s (plexus-daemon writes it; see `kubectl -n kube-system logs ds/plexus-daemon`): %w", last, err)
	}
	return nil
}

// devicePluginReady waits until every node advertises the emulated VFs.
func devicePluginReady(ctx context.Context, c *cluster.Cluster) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
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
		return fmt.Errorf("%s (see `kubectl -n kube-system logs ds/plexus-deviceplugin`): %w", last, err)
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

// Install installs Plexus command bin in c as the demo does and waits until it works, for the
// e2e tests.
func Install(ctx context.Context, c *cluster.Cluster, bin string) error {
	for _, comp := range components() {
		if comp.bin == bin {
			return installComponent(ctx, c, comp)
		}
	}
	return fmt.Errorf("%s is not a Plexus component", bin)
}

// Manifest returns the YAML that installs Plexus command bin in the sandbox, for the e2e tests.
func Manifest(bin string) ([]byte, error) {
	for _, c := range components() {
		if c.bin == bin && c.manifest != "" {
			return manifests.ReadFile("manifests/" + c.manifest)
		}
	}
	return nil, fmt.Errorf("no sandbox manifest for %s yet", bin)
}
