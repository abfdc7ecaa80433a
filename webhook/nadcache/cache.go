package nadcache

import (
	"context"
	"fmt"
	"sort"
	"sync"
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
)

// podsByNAD indexes running pods by the keys of the NADs their annotations select.
const podsByNAD = "plexus.io/nad"

// Cache is the informer-backed Lookup: every NAD parsed on change, and every running pod that
// selects networks indexed by NAD. It makes no API request per lookup.
type Cache struct {
	cache  ctrlcache.Cache
	nadReg toolscache.ResourceEventHandlerRegistration
	synced atomic.Bool

	mu   sync.RWMutex
	nads map[string]*NAD
}

var _ Lookup = (*Cache)(nil)

// New builds a Cache over the API server cfg reaches. Start it with Run.
func New(ctx context.Context, cfg *rest.Config) (*Cache, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(nadv1.AddToScheme(scheme))
	cc, err := ctrlcache.New(cfg, ctrlcache.Options{
		Scheme: scheme,
		ByObject: map[client.Object]ctrlcache.ByObject{
			&corev1.Pod{}: {Transform: stripPod},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the informer cache: %w", err)
	}
	c := &Cache{cache: cc, nads: map[string]*NAD{}}
	if err := cc.IndexField(ctx, &corev1.Pod{}, podsByNAD, indexPod); err != nil {
		return nil, fmt.Errorf("indexing pods by NetworkAttachmentDefinition: %w", err)
	}
	inf, err := cc.GetInformer(ctx, &nadv1.NetworkAttachmentDefinition{})
	if err != nil {
		return nil, fmt.Errorf("watching NetworkAttachmentDefinitions (is the CRD installed?): %w", err)
	}
	c.nadReg, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    c.store,
		UpdateFunc: func(_, obj any) { c.store(obj) },
		DeleteFunc: c.remove,
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Run starts the informers and blocks until ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	go func() {
		if c.cache.WaitForCacheSync(ctx) && toolscache.WaitForCacheSync(ctx.Done(), c.nadReg.HasSynced) {
			c.synced.Store(true)
		}
	}()
	return c.cache.Start(ctx)
}

// Synced reports whether the NADs and pods have been listed once and handled.
func (c *Cache) Synced() bool { return c.synced.Load() }

// NAD implements Lookup.
func (c *Cache) NAD(namespace, name string) (*NAD, error) {
	c.mu.RLock()
	n, ok := c.nads[namespace+"/"+name]
	c.mu.RUnlock()
	if !ok {
		return nil, &NotFoundError{Namespace: namespace, Name: name}
	}
	return n, nil
}

// PodsUsing implements Lookup.
func (c *Cache) PodsUsing(key string, limit int) ([]string, int, error) {
	var pods corev1.PodList
	if err := c.cache.List(context.Background(), &pods, client.MatchingFields{podsByNAD: key}); err != nil {
		return nil, 0, err
	}
	names := make([]string, 0, len(pods.Items))
	for _, p := range pods.Items {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	sort.Strings(names)
	total := len(names)
	if total > limit {
		names = names[:limit]
	}
	return names, total, nil
}

func (c *Cache) store(obj any) {
	nad, ok := obj.(*nadv1.NetworkAttachmentDefinition)
	if !ok {
		return
	}
	e := Parse(nad)
	c.mu.Lock()
	c.nads[e.Key()] = e
	c.mu.Unlock()
}

func (c *Cache) remove(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	nad, ok := obj.(*nadv1.NetworkAttachmentDefinition)
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.nads, nad.Namespace+"/"+nad.Name)
	c.mu.Unlock()
}

// indexPod returns the NAD keys a running pod selects; none for a finished pod.
func indexPod(obj client.Object) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	sels, def, err := Selections(pod, pod.Namespace)
	if err != nil {
		return nil
	}
	if def != nil {
		sels = append(sels, def)
	}
	seen := map[string]bool{}
	var keys []string
	for _, s := range sels {
		if k := s.Key(); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// stripPod keeps what the index needs: a pod in the cache costs a few hundred bytes.
func stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}
	for _, k := range []string{network.NetworksAnnotation, network.DefaultNetworkAnnotation} {
		if v, ok := pod.Annotations[k]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	return out, nil
}
