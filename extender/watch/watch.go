package watch

import (
	"context"
	"fmt"
	"sync/atomic"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/deviceplugin/capacity"
	"github.com/plexus-project/plexus/extender"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Watcher keeps a Cluster up to date from the API server.
type Watcher struct {
	cache  ctrlcache.Cache
	regs   []toolscache.ResourceEventHandlerRegistration
	synced atomic.Bool
}

// New builds a Watcher over the API server cfg reaches, feeding cluster. Start it with Run.
func New(ctx context.Context, cfg *rest.Config, cluster *extender.Cluster) (*Watcher, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(nadv1.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	cc, err := ctrlcache.New(cfg, ctrlcache.Options{
		Scheme: scheme,
		ByObject: map[client.Object]ctrlcache.ByObject{
			&corev1.Node{}:                       {Transform: stripNode},
			&corev1.Pod{}:                        {Transform: stripPod},
			&nadv1.NetworkAttachmentDefinition{}: {Transform: stripMeta},
			&v1alpha1.IPBlock{}:                  {Transform: stripMeta},
		},
		DefaultTransform: stripMeta,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the informer cache: %w", err)
	}
	w := &Watcher{cache: cc}
	feeds := []struct {
		obj    client.Object
		what   string
		set    func(any)
		delete func(any)
	}{
		{&corev1.Node{}, "Nodes", func(o any) { cluster.SetNode(o.(*corev1.Node)) }, func(o any) { cluster.DeleteNode(o.(*corev1.Node).Name) }},
		{&corev1.Pod{}, "Pods", func(o any) { cluster.SetPod(o.(*corev1.Pod)) }, func(o any) { cluster.DeletePod(o.(*corev1.Pod).UID) }},
		{&nadv1.NetworkAttachmentDefinition{}, "NetworkAttachmentDefinitions (is the CRD installed?)",
			func(o any) { cluster.SetNAD(o.(*nadv1.NetworkAttachmentDefinition)) },
			func(o any) { n := o.(*nadv1.NetworkAttachmentDefinition); cluster.DeleteNAD(n.Namespace, n.Name) }},
		{&v1alpha1.IPBlock{}, "IPBlocks (is the plexus-ipam CRD installed?)", func(o any) { cluster.SetBlock(o.(*v1alpha1.IPBlock)) }, func(o any) { cluster.DeleteBlock(o.(*v1alpha1.IPBlock).Name) }},
	}
	for _, f := range feeds {
		inf, err := cc.GetInformer(ctx, f.obj)
		if err != nil {
			return nil, fmt.Errorf("watching %s: %w", f.what, err)
		}
		set, del := f.set, f.delete
		reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    set,
			UpdateFunc: func(_, o any) { set(o) },
			DeleteFunc: func(o any) {
				if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
					o = t.Obj
				}
				del(o)
			},
		})
		if err != nil {
			return nil, err
		}
		w.regs = append(w.regs, reg)
	}
	return w, nil
}

// Run starts the informers and blocks until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	go func() {
		if !w.cache.WaitForCacheSync(ctx) {
			return
		}
		for _, r := range w.regs {
			if !toolscache.WaitForCacheSync(ctx.Done(), r.HasSynced) {
				return
			}
		}
		w.synced.Store(true)
	}()
	return w.cache.Start(ctx)
}

// Synced reports whether every informer has listed and delivered its objects to the Cluster.
func (w *Watcher) Synced() bool { return w.synced.Load() }

func stripMeta(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// stripNode keeps what the extender reads of a Node.
func stripNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels,
	}}
	if v, ok := n.Annotations[capacity.Annotation]; ok {
		out.Annotations = map[string]string{capacity.Annotation: v}
	}
	out.Status.Allocatable = n.Status.Allocatable
	return out, nil
}

// stripPod keeps what the extender reads of a Pod.
func stripPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion,
	}}
	for _, k := range []string{network.NetworksAnnotation, network.DefaultNetworkAnnotation, extender.SingleNUMAAnnotation} {
		if v, ok := p.Annotations[k]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	out.Spec.NodeName = p.Spec.NodeName
	out.Status.Phase = p.Status.Phase
	out.Spec.Containers = resourcesOnly(p.Spec.Containers)
	out.Spec.InitContainers = resourcesOnly(p.Spec.InitContainers)
	return out, nil
}

func resourcesOnly(ctrs []corev1.Container) []corev1.Container {
	if len(ctrs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(ctrs))
	for i, c := range ctrs {
		out[i] = corev1.Container{Name: c.Name, Resources: c.Resources, RestartPolicy: c.RestartPolicy}
	}
	return out
}
