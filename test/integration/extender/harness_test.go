package extender

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	schedulerconfigv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/extender/app"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
	"github.com/plexus-project/plexus/test/controlplane"
)

const (
	vf            = corev1.ResourceName("intel.com/sriov_netdevice")
	schedulerName = "plexus-extender-test"
)

type env struct {
	cp  *controlplane.ControlPlane
	c   client.Client
	url string
}

// stanza says how the test's scheduler is pointed at the extender.
type stanza struct {
	// managed lists managedResources; none sends every pod to the extender.
	managed []string
	// ignoredByScheduler leaves the VF count to the extender alone, so the test proves it.
	ignoredByScheduler bool
	// wholeNodes: nodeCacheCapable false, the scheduler sends and expects Node objects.
	wholeNodes bool
}

// start brings up the control plane, the extender (in this process, on loopback, plain HTTP)
// and the real kube-scheduler configured with the stanza plexus-extender prints.
func start(t *testing.T, s stanza) *env {
	t.Helper()
	ctrllog.SetLogger(logr.Discard())
	scheme := controlplane.DefaultScheme()
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	cp := controlplane.Start(t, controlplane.Options{Scheme: scheme})
	e := runExtender(t, cp, app.Options{RESTConfig: cp.Config, MetricsAddress: "0"})

	ext := app.Extender(app.StanzaOptions{URLPrefix: e.url, NodeCacheCapable: !s.wholeNodes, ManagedResources: s.managed})
	for i := range ext.ManagedResources {
		ext.ManagedResources[i].IgnoredByScheduler = s.ignoredByScheduler
	}
	cp.StartScheduler(t, &schedulerconfigv1.KubeSchedulerConfiguration{
		Profiles:  []schedulerconfigv1.KubeSchedulerProfile{{SchedulerName: ptr.To(schedulerName)}},
		Extenders: []schedulerconfigv1.Extender{ext},
	})
	return e
}

// runExtender runs the extender as the binary does (app.Run) in this process, serving plain
// HTTP on a loopback port, until the test ends, and waits until it is ready.
func runExtender(t *testing.T, cp *controlplane.ControlPlane, o app.Options) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("extender: %v", err)
		}
	})
	e := &env{cp: cp, c: cp.Client, url: "http://" + ln.Addr().String() + "/"}
	e.waitReady(t)
	return e
}

func (e *env) waitReady(t *testing.T) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		resp, err := http.Get(e.url + "readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("extender at %s not ready: %v", e.url, err)
	}
}

func (e *env) node(ctx context.Context, t *testing.T, name string, vfs int64, labels map[string]string) {
	t.Helper()
	if labels == nil {
		labels = map[string]string{}
	}
	labels["kubernetes.io/hostname"] = name
	e.cp.CreateNode(ctx, t, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"),
		corev1.ResourcePods: resource.MustParse("110"), vf: *resource.NewQuantity(vfs, resource.DecimalSI),
	})
}

func (e *env) nad(ctx context.Context, t *testing.T, name, resourceName, selector, ipam string) {
	t.Helper()
	nad := &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{}}}
	conf := map[string]any{"cniVersion": "1.0.0", "name": name, "type": "plexus-sriov"}
	if ipam != "" {
		conf["ipam"] = json.RawMessage(ipam)
	}
	b, _ := json.Marshal(conf)
	nad.Spec.Config = string(b)
	if resourceName != "" {
		nad.Annotations[network.ResourceNameAnnotation] = resourceName
	}
	if selector != "" {
		nad.Annotations[network.NodeSelectorAnnotation] = selector
	}
	if err := e.c.Create(ctx, nad); err != nil {
		t.Fatal(err)
	}
}

// pod builds a pod selecting networks and requesting vfs VFs; nodeName set binds it directly
// (a pod that was already there).
func pod(name, networks string, vfs int64, nodeName string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{}},
		Spec:       corev1.PodSpec{SchedulerName: schedulerName, NodeName: nodeName, Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
	if networks != "" {
		p.Annotations[network.NetworksAnnotation] = networks
	}
	if vfs > 0 {
		q := corev1.ResourceList{vf: *resource.NewQuantity(vfs, resource.DecimalSI)}
		p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: q, Limits: q}
	}
	return p
}

func (e *env) create(ctx context.Context, t *testing.T, pods ...*corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatalf("creating pod %s: %v", p.Name, err)
		}
	}
}

// settle waits until pod is bound or the scheduler has reported it unschedulable.
func (e *env) settle(ctx context.Context, t *testing.T, p *corev1.Pod) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := e.c.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
			return false, err
		}
		return p.Spec.NodeName != "" || unschedulable(p) != "", nil
	})
	if err != nil {
		t.Fatalf("pod %s neither bound nor reported unschedulable: %v (status %+v)", p.Name, err, p.Status)
	}
}

// unschedulable is the PodScheduled message of a pod the scheduler could not place, or "".
func unschedulable(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Message
		}
	}
	return ""
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s = %q, want it to contain %q", what, got, w)
		}
	}
}

func (e *env) pods(ctx context.Context, t *testing.T) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	if err := e.c.List(ctx, &list, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	return list.Items
}
