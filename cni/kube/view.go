package kube

import (
	"context"
	"fmt"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	nadinformers "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/informers/externalversions"
	nadlisters "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/listers/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/plexus-project/plexus/cni/attach"
	"github.com/plexus-project/plexus/cni/network"
)

// View reads this node's pods and the NADs from informer caches and writes status and events.
type View struct {
	client      kubernetes.Interface
	node        string
	timeout     time.Duration
	podFactory  informers.SharedInformerFactory
	nadFactory  nadinformers.SharedInformerFactory
	pods        corelisters.PodLister
	nads        nadlisters.NetworkAttachmentDefinitionLister
	synced      []cache.InformerSynced
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
}

var (
	_ attach.Pods     = (*View)(nil)
	_ attach.NADs     = (*View)(nil)
	_ attach.Reporter = (*View)(nil)
)

// NewView builds the caches for node; Start runs them. timeout bounds each API write.
func NewView(client kubernetes.Interface, nads nadclient.Interface, node string, timeout time.Duration) *View {
	v := &View{client: client, node: node, timeout: timeout}
	v.podFactory = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", node).String()
		}),
		informers.WithTransform(slimPod))
	podInformer := v.podFactory.Core().V1().Pods()
	v.pods = podInformer.Lister()
	v.nadFactory = nadinformers.NewSharedInformerFactory(nads, 0)
	nadInformer := v.nadFactory.K8sCniCncfIo().V1().NetworkAttachmentDefinitions()
	_ = nadInformer.Informer().SetTransform(dropManagedFields) // fails only once started
	v.nads = nadInformer.Lister()
	v.synced = []cache.InformerSynced{podInformer.Informer().HasSynced, nadInformer.Informer().HasSynced}
	v.broadcaster = record.NewBroadcaster()
	v.recorder = v.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "plexus-daemon", Host: node})
	return v
}

// Start runs the informers and the event sink until ctx ends.
func (v *View) Start(ctx context.Context) {
	v.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: v.client.CoreV1().Events("")})
	v.podFactory.Start(ctx.Done())
	v.nadFactory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		v.broadcaster.Shutdown()
	}()
}

// Synced reports whether both caches hold a full list.
func (v *View) Synced() bool {
	for _, s := range v.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Pod returns the pod from the cache, waiting until ctx ends for it to arrive; then it reads
// the API once (the pod may be so new that the watch has not delivered it).
func (v *View) Pod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if pod, err := v.pods.Pods(namespace).Get(name); err == nil {
			return pod, nil
		}
		select {
		case <-ctx.Done():
			gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.timeout)
			defer cancel()
			pod, err := v.client.CoreV1().Pods(namespace).Get(gctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			if pod.Spec.NodeName != v.node {
				return nil, apierrors.NewNotFound(corev1.Resource("pods"), fmt.Sprintf("%s/%s on node %s (it is bound to %q)", namespace, name, v.node, pod.Spec.NodeName))
			}
			return pod, nil
		case <-tick.C:
		}
	}
}

// NAD returns a NetworkAttachmentDefinition from the cache.
func (v *View) NAD(namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	return v.nads.NetworkAttachmentDefinitions(namespace).Get(name)
}

// WriteStatus patches the pod's network-status (pods/status).
func (v *View) WriteStatus(ctx context.Context, pod *corev1.Pod, statuses []network.Status) error {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	return network.WriteStatus(ctx, v.client.CoreV1().Pods(pod.Namespace), pod.Name, statuses)
}

// Warn records a Warning Event on the pod (sent asynchronously).
func (v *View) Warn(pod *corev1.Pod, reason, message string) {
	v.recorder.Event(pod, corev1.EventTypeWarning, reason, message)
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
