package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/plexus-project/plexus/test/cluster"
)

// Options configure Run.
type Options struct {
	// Cluster shapes the cluster.
	Cluster cluster.Options
	// Exit makes Run check the result, tear down and return instead of waiting for the context
	// to end.
	Exit bool
	// Out receives the report.
	Out io.Writer
}

var nadGVR = schema.GroupVersionResource{Group: "k8s.cni.cncf.io", Version: "v1", Resource: "network-attachment-definitions"}

// Run brings the cluster up, shows what runs on it, and tears it down when ctx ends (Ctrl-C)
// or, with Exit, once the checks ran.
func Run(ctx context.Context, opts Options) (err error) {
	log := logr.FromContextOrDiscard(ctx)
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
	if err := check(ctx, c); err != nil {
		return err
	}
	kubectl := filepath.Join(c.BinDir(), "kubectl")
	fmt.Fprintf(opts.Out, "\nPlexus sandbox is up (control plane: etcd, kube-apiserver, kube-scheduler, kube-controller-manager).\n")
	fmt.Fprintf(opts.Out, "  kubeconfig: %s\n  try:        %s --kubeconfig %s get network-attachment-definitions -A\n",
		c.Kubeconfig, kubectl, c.Kubeconfig)
	fmt.Fprintf(opts.Out, "  pending:    worker nodes with real kubelets, Plexus components, examples\n")
	if opts.Exit {
		return nil
	}
	fmt.Fprintf(opts.Out, "Press Ctrl-C to tear down.\n")
	<-ctx.Done()
	return nil
}

// check proves the cluster serves the NetworkAttachmentDefinition API.
func check(ctx context.Context, c *cluster.Cluster) error {
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
	list, err := dc.Resource(nadGVR).Namespace("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing NetworkAttachmentDefinitions: %w", err)
	}
	if len(list.Items) == 0 {
		return errors.New("the NetworkAttachmentDefinition just created is not listed")
	}
	return dc.Resource(nadGVR).Namespace("default").Delete(ctx, "demo-check", metav1.DeleteOptions{})
}
