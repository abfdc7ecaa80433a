package reconciler

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

func pod(name, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid)}}
}

// mirror is the API object of a static pod: its own UID, the kubelet's in an annotation.
func mirror(name, apiUID, kubeletUID string) *corev1.Pod {
	p := pod(name, apiUID)
	p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: kubeletUID}
	return p
}

func TestBlockReconciler(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	later, earlier := metav1.NewTime(now.Add(time.Minute)), metav1.NewTime(now.Add(-time.Minute))
	al := func(name, uid string) v1alpha1.Allocation {
		return v1alpha1.Allocation{Pool: "p", ContainerID: "c-" + name, IfName: "net1", PodNamespace: "ns", PodName: name, PodUID: uid}
	}
	reserved := func(name string, until metav1.Time) v1alpha1.Allocation {
		a := al(name, "old")
		a.ContainerID, a.IfName, a.ReservedUntil = "", "", &until
		return a
	}
	tests := []struct {
		name   string
		alloc  v1alpha1.Allocation
		cached []client.Object // what the manager's cache holds
		live   []client.Object // what the API server holds
		freed  bool
	}{
		{name: "live pod kept", alloc: al("a", "u1"), cached: []client.Object{pod("a", "u1")}, live: []client.Object{pod("a", "u1")}},
		{name: "pod gone freed", alloc: al("a", "u1"), freed: true},
		{name: "pod re-created with a new UID freed", alloc: al("a", "u1"), cached: []client.Object{pod("a", "u2")}, live: []client.Object{pod("a", "u2")}, freed: true},
		{name: "StatefulSet: new pod's allocation kept while the cache still has the old pod", alloc: al("a", "u2"), cached: []client.Object{pod("a", "u1")}, live: []client.Object{pod("a", "u2")}},
		{name: "cache lags behind a new pod: kept", alloc: al("a", "u1"), live: []client.Object{pod("a", "u1")}},
		{name: "static pod: the mirror's annotation is the runtime's UID, kept", alloc: al("etcd-n1", "hash1"),
			cached: []client.Object{mirror("etcd-n1", "api-1", "hash1")}, live: []client.Object{mirror("etcd-n1", "api-1", "hash1")}},
		{name: "static pod: cache lagging, live mirror kept", alloc: al("etcd-n1", "hash1"), live: []client.Object{mirror("etcd-n1", "api-2", "hash1")}},
		{name: "static pod changed (new hash): old allocation freed", alloc: al("etcd-n1", "hash1"),
			cached: []client.Object{mirror("etcd-n1", "api-3", "hash2")}, live: []client.Object{mirror("etcd-n1", "api-3", "hash2")}, freed: true},
		{name: "no pod identity kept", alloc: v1alpha1.Allocation{Pool: "p", ContainerID: "c"}},
		{name: "sticky reservation not expired kept", alloc: reserved("a", later)},
		{name: "sticky reservation expired, no pod: freed", alloc: reserved("a", earlier), freed: true},
		{name: "sticky reservation expired, pod of that name exists: kept", alloc: reserved("a", earlier), live: []client.Object{pod("a", "u9")}},
		{name: "node hold not expired kept", alloc: v1alpha1.Allocation{Pool: "p", Node: "n1", HeldUntil: &later}},
		{name: "node hold expired: freed", alloc: v1alpha1.Allocation{Pool: "p", Node: "n1", HeldUntil: &earlier}, freed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block := &v1alpha1.IPBlock{
				ObjectMeta: metav1.ObjectMeta{Name: "b", CreationTimestamp: metav1.NewTime(now)},
				Spec: v1alpha1.IPBlockSpec{CIDR: "10.0.0.0/27", Node: "n1", Allocations: map[string]v1alpha1.Allocation{
					"10.0.0.1": tt.alloc, "10.0.0.2": al("keeper", "k"),
				}},
			}
			keeper := pod("keeper", "k")
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
			cached := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(append(tt.cached, block, keeper, node)...).Build()
			live := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(append(tt.live, keeper, node)...).Build()
			r := &BlockReconciler{Client: cached, Live: live, Opts: Options{Clock: func() time.Time { return now }}}
			r.Opts.setDefaults()
			res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Name: "b"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.RequeueAfter != r.Opts.Interval {
				t.Fatalf("requeue after %s, want %s", res.RequeueAfter, r.Opts.Interval)
			}
			var got v1alpha1.IPBlock
			if err := cached.Get(context.Background(), types.NamespacedName{Name: "b"}, &got); err != nil {
				t.Fatal(err)
			}
			_, kept := got.Spec.Allocations["10.0.0.1"]
			if kept == tt.freed {
				t.Fatalf("freed = %v, want %v", !kept, tt.freed)
			}
			if _, ok := got.Spec.Allocations["10.0.0.2"]; !ok {
				t.Fatal("the live pod's address was freed")
			}
		})
	}
}

func TestEmptyBlockOfGoneNodeDeleted(t *testing.T) {
	now := time.Now()
	block := &v1alpha1.IPBlock{ObjectMeta: metav1.ObjectMeta{Name: "b", CreationTimestamp: metav1.NewTime(now)},
		Spec: v1alpha1.IPBlockSpec{CIDR: "10.0.0.0/27", Node: "gone", Allocations: map[string]v1alpha1.Allocation{
			"10.0.0.1": {Pool: "p", PodNamespace: "ns", PodName: "dead", PodUID: "u"}}}}
	c := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(block).Build()
	r := &BlockReconciler{Client: c, Live: c, Opts: Options{}}
	r.Opts.setDefaults()
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.IPBlock
	if err := c.Get(context.Background(), types.NamespacedName{Name: "b"}, &got); err == nil {
		t.Fatalf("block of a gone node still there: %+v", got.Spec)
	}
}

// TestMalformedEntriesReported: an entry whose key is not an address or whose value does not
// parse is left alone and reported with an event naming the block and the entry, while the
// block's other entries are reconciled.
func TestMalformedEntriesReported(t *testing.T) {
	var spec v1alpha1.IPBlockSpec
	if err := json.Unmarshal([]byte(`{"cidr":"10.0.0.0/27","node":"n1","allocations":{
		"10.0.0.1":"pod=ns/gone uid=u1 container=c1 if=net1 pool=p",
		"10.0.0.2":"pod=ns/gone b uid=u1",
		"nonsense":"pod=ns/gone uid=u1 container=c2 if=net1 pool=p"}}`), &spec); err != nil {
		t.Fatal(err)
	}
	block := &v1alpha1.IPBlock{ObjectMeta: metav1.ObjectMeta{Name: "b", CreationTimestamp: metav1.Now()}, Spec: spec}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	c := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(block, node).Build()
	rec := record.NewFakeRecorder(10)
	r := &BlockReconciler{Client: c, Live: c, Recorder: rec}
	r.Opts.setDefaults()
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	var got v1alpha1.IPBlock
	if err := c.Get(context.Background(), types.NamespacedName{Name: "b"}, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Spec.Allocations["10.0.0.1"]; ok {
		t.Fatal("the gone pod's good entry was not freed")
	}
	if len(got.Spec.Allocations) != 2 || got.Spec.Allocations["10.0.0.2"].String() != "pod=ns/gone b uid=u1" {
		t.Fatalf("malformed entries changed: %v", got.Spec.Allocations)
	}
	var events []string
	for len(rec.Events) > 0 {
		events = append(events, <-rec.Events)
	}
	all := strings.Join(events, "\n")
	if len(events) != 2 || !strings.Contains(all, `Warning MalformedAllocation entry "nonsense" of IP block b`) || !strings.Contains(all, `entry "10.0.0.2" of IP block b`) {
		t.Fatalf("events:\n%s", all)
	}
}
