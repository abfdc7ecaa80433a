package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	k8stypes "k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-project/plexus/cni/attach"
	"github.com/plexus-project/plexus/cni/network"
)

// View reads this node's pods and the NADs from informer caches and writes status and events.
//
// It talks to the API server through two REST clients over a scheme of the two API groups it
// reads (core/v1 and k8s.cni.cncf.io/v1), not client-go's clientset and informer factory: those
// carry a client, an informer and the types of every Kubernetes API group, which a node daemon
// would keep resident on every node for nothing.
type View struct {
	core    rest.Interface
	node    string
	timeout time.Duration
	pods    cache.SharedIndexInformer
	nads    cache.SharedIndexInformer
	events  *eventWriter
}

var (
	_ attach.Pods     = (*View)(nil)
	_ attach.NADs     = (*View)(nil)
	_ attach.Reporter = (*View)(nil)
)

// scheme holds the types the View reads and writes.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(corev1.AddToScheme(s))
	utilruntime.Must(nadv1.AddToScheme(s))
	return s
}

// NewView builds the caches of node over cfg; Start runs them. timeout bounds each API write.
// Pods travel as protobuf, NADs (a custom resource) as JSON.
func NewView(cfg *rest.Config, node string, timeout time.Duration) (*View, error) {
	codecs := serializer.NewCodecFactory(scheme()).WithoutConversion()
	coreCfg := rest.CopyConfig(cfg)
	coreCfg.APIPath, coreCfg.GroupVersion, coreCfg.NegotiatedSerializer = "/api", &corev1.SchemeGroupVersion, codecs
	coreCfg.ContentType = runtime.ContentTypeProtobuf
	coreCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	core, err := rest.RESTClientFor(coreCfg)
	if err != nil {
		return nil, fmt.Errorf("an API client for pods and events: %w", err)
	}
	nadCfg := rest.CopyConfig(cfg)
	nadCfg.APIPath, nadCfg.GroupVersion, nadCfg.NegotiatedSerializer = "/apis", &nadv1.SchemeGroupVersion, codecs
	nadCfg.ContentType = runtime.ContentTypeJSON
	nads, err := rest.RESTClientFor(nadCfg)
	if err != nil {
		return nil, fmt.Errorf("an API client for NetworkAttachmentDefinitions: %w", err)
	}
	return newView(core, nads, node, timeout), nil
}

func newView(core, nads rest.Interface, node string, timeout time.Duration) *View {
	v := &View{core: core, node: node, timeout: timeout, events: newEventWriter(core, node, timeout)}
	byNamespace := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	v.pods = cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(core, "pods", metav1.NamespaceAll, fields.OneTermEqualSelector("spec.nodeName", node)),
		&corev1.Pod{}, 0, byNamespace)
	_ = v.pods.SetTransform(slimPod) // fails only once started
	v.nads = cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(nads, "network-attachment-definitions", metav1.NamespaceAll, fields.Everything()),
		&nadv1.NetworkAttachmentDefinition{}, 0, byNamespace)
	_ = v.nads.SetTransform(dropManagedFields)
	return v
}

// Start runs the informers and the event writer until ctx ends.
func (v *View) Start(ctx context.Context) {
	go v.pods.RunWithContext(ctx)
	go v.nads.RunWithContext(ctx)
}

// Synced reports whether both caches hold a full list.
func (v *View) Synced() bool {
	return v.pods.HasSynced() && v.nads.HasSynced()
}

// cachedPod returns the pod namespace/name of the cache.
func (v *View) cachedPod(namespace, name string) (*corev1.Pod, bool) {
	obj, ok, err := v.pods.GetIndexer().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	pod, ok := obj.(*corev1.Pod)
	return pod, ok
}

// Pod returns the pod from the cache, waiting until ctx ends for it to arrive; then it reads
// the API once (the pod may be so new that the watch has not delivered it).
func (v *View) Pod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if pod, ok := v.cachedPod(namespace, name); ok {
			return pod, nil
		}
		select {
		case <-ctx.Done():
			gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.timeout)
			defer cancel()
			var pod corev1.Pod
			if err := v.core.Get().Namespace(namespace).Resource("pods").Name(name).Do(gctx).Into(&pod); err != nil {
				return nil, err
			}
			if pod.Spec.NodeName != v.node {
				return nil, apierrors.NewNotFound(corev1.Resource("pods"), fmt.Sprintf("%s/%s on node %s (it is bound to %q)", namespace, name, v.node, pod.Spec.NodeName))
			}
			return &pod, nil
		case <-tick.C:
		}
	}
}

// NAD returns a NetworkAttachmentDefinition from the cache.
func (v *View) NAD(namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	obj, ok, err := v.nads.GetIndexer().GetByKey(namespace + "/" + name)
	if err != nil {
		return nil, err
	}
	nad, isNAD := obj.(*nadv1.NetworkAttachmentDefinition)
	if !ok || !isNAD {
		return nil, apierrors.NewNotFound(nadv1.Resource("network-attachment-definitions"), name)
	}
	return nad, nil
}

// WriteStatus patches the pod's network-status (pods/status).
func (v *View) WriteStatus(ctx context.Context, pod *corev1.Pod, statuses []network.Status) error {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	return network.WriteStatus(ctx, podPatcher{c: v.core, namespace: pod.Namespace}, pod.Name, statuses)
}

// Warn records a Warning Event on the pod (sent asynchronously).
func (v *View) Warn(pod *corev1.Pod, reason, message string) {
	v.events.warn(pod, reason, message)
}

// podPatcher is network.PodPatcher over the core REST client.
type podPatcher struct {
	c         rest.Interface
	namespace string
}

func (p podPatcher) Patch(ctx context.Context, name string, pt k8stypes.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Pod, error) {
	var out corev1.Pod
	err := p.c.Patch(pt).Namespace(p.namespace).Resource("pods").Name(name).SubResource(subresources...).
		VersionedParams(&opts, metav1.ParameterCodec).Body(data).Do(ctx).Into(&out)
	return &out, err
}

// slimPod keeps what the server reads of a pod: its identity, its network annotations and
// its containers' extended resources (how many devices it asked for, when kubelet's
// PodResources API does not say which it got). The cache holds every pod of the node; the rest
// is not needed.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	var annotations map[string]string
	for _, k := range []string{network.NetworksAnnotation, network.DefaultNetworkAnnotation} {
		if v, ok := pod.Annotations[k]; ok {
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations[k] = v
		}
	}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			Annotations: annotations, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{NodeName: pod.Spec.NodeName, Containers: extendedResources(pod.Spec.Containers)},
	}, nil
}

// extendedResources keeps, of the containers asking for extended resources (names with a
// domain, such as intel.com/sriov_netdevice), those resources alone; nil when none asks.
func extendedResources(containers []corev1.Container) []corev1.Container {
	var out []corev1.Container
	for _, c := range containers {
		lim, req := extended(c.Resources.Limits), extended(c.Resources.Requests)
		if lim != nil || req != nil {
			out = append(out, corev1.Container{Name: c.Name, Resources: corev1.ResourceRequirements{Limits: lim, Requests: req}})
		}
	}
	return out
}

func extended(rl corev1.ResourceList) corev1.ResourceList {
	var out corev1.ResourceList
	for name, q := range rl {
		if strings.Contains(string(name), "/") && !strings.HasPrefix(string(name), "kubernetes.io/") {
			if out == nil {
				out = corev1.ResourceList{}
			}
			out[name] = q
		}
	}
	return out
}

func dropManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}
