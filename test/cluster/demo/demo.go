package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	ipamconfig "github.com/plexus-project/plexus/ipam/config"
	"github.com/plexus-project/plexus/test/cluster"
	"github.com/plexus-project/plexus/test/repo"
)

// Options configure Run.
type Options struct {
	// Cluster shapes the cluster; SRIOV defaults to 2 PFs with 4 VFs per node.
	Cluster cluster.Options
	// Repo is the Plexus module root. Defaults to the module above the working directory.
	Repo string
	// Exit makes Run check the result, tear down and return instead of waiting for the context
	// to end.
	Exit bool
	// Out receives the report.
	Out io.Writer
	// Report, when set, receives what the demo found (also when a check failed).
	Report *Report
}

// IPAMAgentSocket is where plexus-daemon's IPAM agent listens on every node: plexus-ipam's
// default lock_dir.
const IPAMAgentSocket = "/run/plexus-ipam/agent.sock"

var nadGVR = schema.GroupVersionResource{Group: "k8s.cni.cncf.io", Version: "v1", Resource: "network-attachment-definitions"}

// Run builds the Plexus commands, brings a cluster up with emulated SR-IOV on every node,
// installs Plexus with its Helm chart (charts/plexus), applies docs/examples and prints what
// each pod got. It tears down when ctx ends (Ctrl-C) or, with Exit, right after checking the
// result; any failed check is an error.
func Run(ctx context.Context, opts Options) (err error) {
	log := logr.FromContextOrDiscard(ctx)
	if opts.Repo == "" {
		if opts.Repo, err = repo.Root(); err != nil {
			return err
		}
	}
	if opts.Cluster.SRIOV == nil {
		opts.Cluster.SRIOV = &cluster.SRIOVOptions{}
	}
	buildDir, err := os.MkdirTemp("", "plexus-demo-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(buildDir)
	log.Info("building the Plexus commands", "into", buildDir)
	build, err := cluster.BuildPlexus(ctx, opts.Repo, buildDir, "plexus-sandbox")
	if err != nil {
		return err
	}
	WithPlexus(&opts.Cluster, build)
	c, err := cluster.Up(ctx, opts.Cluster)
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		log.Info("tearing down")
		if derr := c.Down(dctx); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	if err := checkNADs(ctx, c); err != nil {
		return err
	}
	rep := opts.Report
	if rep == nil {
		rep = &Report{}
	}
	out := opts.Out
	rep.Components, err = install(ctx, c, opts.Repo)
	printComponents(out, c, rep)
	if err != nil {
		return err
	}
	webhook := rep.Installed("plexus-webhook")
	ex, err := applyExamples(ctx, c, filepath.Join(opts.Repo, "docs", "examples"), webhook)
	if err != nil {
		return err
	}
	if err := ex.waitPods(ctx, c); err != nil {
		return fmt.Errorf("the example pods: %w", err)
	}
	rep.Pods = ex.report(ctx, c)

	fmt.Fprintf(out, "\nExamples (docs/examples): %d NADs, %d pods", len(ex.nads), len(ex.pods))
	if webhook {
		fmt.Fprint(out, "; plexus-webhook injected the SR-IOV resources of their networks, plexus-scheduler (with plexus-extender) placed them")
	}
	if len(ex.filled) > 0 {
		fmt.Fprintf(out, "; plexus-webhook is pending, so the demo wrote the SR-IOV resources it would inject into %s", strings.Join(ex.filled, ", "))
	}
	fmt.Fprint(out, "\n\n")
	printTable(out, rep)
	fmt.Fprintf(out, "\nkubeconfig: %s\ntry:        %s --kubeconfig %s get pods,network-attachment-definitions -A -o wide\n",
		c.Kubeconfig, filepath.Join(c.BinDir(), "kubectl"), c.Kubeconfig)

	if err := check(c, rep, ex.resources()); err != nil {
		return fmt.Errorf("the example pods did not get what the installed components give: %w", err)
	}
	if opts.Exit {
		return nil
	}
	fmt.Fprintln(out, "Press Ctrl-C to tear down.")
	<-ctx.Done()
	return nil
}

// printComponents prints the cluster's shape and what became of each component.
func printComponents(out io.Writer, c *cluster.Cluster, rep *Report) {
	fmt.Fprintf(out, "\nPlexus sandbox: %d nodes (real kubelet + containerd each), %d emulated VFs per node; control plane ready %.1f s, nodes Ready %.1f s, cluster up %.1f s\n",
		len(c.Nodes), len(c.Nodes[0].VFs), c.Timings.ControlPlane.Seconds(), c.Timings.NodesReady.Seconds(), c.Timings.Up.Seconds())
	fmt.Fprintln(out, "\nComponents:")
	for _, s := range rep.Components {
		fmt.Fprintf(out, "  %-20s %-45s %s\n", s.Bin, s.Role, s.Note)
	}
}

// WithPlexus adds to opts what the chart needs on the cluster: the Plexus images and the second
// scheduler's (from the cached kube-scheduler) on every node. And, for the tests that run the
// CNI binaries without the chart, those binaries in every node's /opt/cni/bin (as a node image
// may ship them; plexus-daemon's install-cni replaces them) and plexus-ipam's node identity
// with its kubeconfig on every node (Install("plexus-ipam") grants its rights).
func WithPlexus(opts *cluster.Options, build *cluster.Build) {
	opts.Images = append(opts.Images, build.Images()...)
	opts.SecondSchedulerImage = cluster.KubeSchedulerImageRef
	for _, comp := range components() {
		if p, ok := build.Binaries[comp.bin]; ok && comp.cni {
			opts.CNIPlugins = append(opts.CNIPlugins, p)
		}
	}
	opts.Users = append(opts.Users, cluster.User{Name: IPAMUser})
	if opts.NodeKubeconfigs == nil {
		opts.NodeKubeconfigs = map[string]string{}
	}
	opts.NodeKubeconfigs[ipamconfig.DefaultKubeconfig] = IPAMUser
}

// checkNADs proves the cluster serves the NetworkAttachmentDefinition API.
func checkNADs(ctx context.Context, c *cluster.Cluster) error {
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	nad := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
		"metadata": map[string]any{"name": "demo-check", "namespace": "default"},
		"spec":     map[string]any{"config": `{"cniVersion":"1.0.0","type":"macvlan","master":"eth0"}`},
	}}
	if _, err := dc.Resource(nadGVR).Namespace("default").Create(ctx, nad, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating a NetworkAttachmentDefinition: %w", err)
	}
	return dc.Resource(nadGVR).Namespace("default").Delete(ctx, "demo-check", metav1.DeleteOptions{})
}
