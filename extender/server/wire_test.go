package server

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"
)

func TestParseNames(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: `[]`, want: []string{}},
		{in: "[ \n ]", want: []string{}},
		{in: "[\n\t\"a\",\r\n\"b\"\n]", want: []string{"a", "b"}},
		{in: `[""]`, want: []string{""}},
		{in: ` [ "a" , "node-1.example" ]  `, want: []string{"a", "node-1.example"}},
		{in: `["a\u0062"]`, want: []string{"ab"}},
		{in: `["a",]`, err: true},
		{in: `["a" "b"]`, err: true},
		{in: `[1]`, err: true},
		{in: `["a"`, err: true},
		{in: `{}`, err: true},
	} {
		got, err := parseNames([]byte(tc.in))
		if (err != nil) != tc.err || (!tc.err && !slices.Equal(got, tc.want)) {
			t.Errorf("parseNames(%s) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// The hand-written answer reads back as the scheduler reads it, the same as encoding/json's.
func TestFilterResultWire(t *testing.T) {
	for _, names := range [][]string{{}, {"a", "node-1.example"}, {`we"ird`, "ü"}} {
		in := &extenderv1.ExtenderFilterResult{NodeNames: &names, FailedNodes: extenderv1.FailedNodesMap{"x": "why"}, FailedAndUnresolvableNodes: extenderv1.FailedNodesMap{}}
		b, err := appendFilterResult([]byte("x"), in)
		if err == nil && b[0] != 'x' {
			t.Fatalf("the answer did not append: %s", b)
		}
		b = b[1:]
		if err != nil {
			t.Fatal(err)
		}
		var out extenderv1.ExtenderFilterResult
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if out.NodeNames == nil || !slices.Equal(*out.NodeNames, names) || out.FailedNodes["x"] != "why" {
			t.Errorf("%q: read back %s as %+v", names, b, out)
		}
	}
}

func TestPrioritiesWire(t *testing.T) {
	for _, list := range []extenderv1.HostPriorityList{{}, {{Host: "a", Score: 10}, {Host: "node-2.x", Score: 0}}} {
		raw, ok := writePriorities(list)
		if !ok {
			t.Fatalf("%v: not written", list)
		}
		var out extenderv1.HostPriorityList
		if err := json.Unmarshal(raw, &out); err != nil || !slices.Equal(out, list) {
			t.Errorf("%v: wrote %s, read back %v (%v)", list, raw, out, err)
		}
	}
	if _, ok := writePriorities(extenderv1.HostPriorityList{{Host: `a"b`}}); ok {
		t.Error("a name needing escapes was written by hand")
	}
}

// relative keeps the ranking the scheduler computes: it adds each listed node's score and
// nothing for a node left out.
func TestRelative(t *testing.T) {
	for _, list := range []extenderv1.HostPriorityList{
		{},
		{{Host: "a", Score: 3}, {Host: "b", Score: 3}},
		{{Host: "a", Score: 0}, {Host: "b", Score: 10}, {Host: "c", Score: 4}},
		{{Host: "a", Score: 7}, {Host: "b", Score: 9}, {Host: "c", Score: 7}, {Host: "d", Score: 10}},
	} {
		got := map[string]int64{}
		for _, hp := range relative(list) {
			if hp.Score <= 0 || hp.Score > extenderv1.MaxExtenderPriority {
				t.Errorf("%v: relative score %d of %s outside 1-10", list, hp.Score, hp.Host)
			}
			got[hp.Host] = hp.Score
		}
		for _, x := range list {
			for _, y := range list {
				if want, have := x.Score-y.Score, got[x.Host]-got[y.Host]; want != have {
					t.Errorf("%v: %s-%s differ by %d, want %d (relative %v)", list, x.Host, y.Host, have, want, got)
				}
			}
		}
	}
	if got := relative(extenderv1.HostPriorityList{{Host: "a", Score: 5}, {Host: "b", Score: 5}}); len(got) != 0 {
		t.Errorf("tied nodes answered %v, want nothing", got)
	}
}

// The pod read from the wire keeps every field the decisions use.
func TestWirePod(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	q := corev1.ResourceList{"intel.com/sriov": resource.MustParse("2")}
	in := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1",
			Annotations:   map[string]string{"k8s.v1.cni.cncf.io/networks": "a, b@net2"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}}},
		Spec: corev1.PodSpec{
			SchedulerName:  "s",
			Containers:     []corev1.Container{{Name: "app", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: q, Limits: q}}},
			InitContainers: []corev1.Container{{Name: "side", RestartPolicy: &always, Resources: corev1.ResourceRequirements{Limits: q}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	names := []string{"n1"}
	b, err := json.Marshal(extenderv1.ExtenderArgs{Pod: in, NodeNames: &names})
	if err != nil {
		t.Fatal(err)
	}
	var w wireArgs
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	args := w.args()
	got := args.Pod
	if got.Namespace != "ns" || got.Name != "p" || got.UID != "u1" || !maps.Equal(got.Annotations, in.Annotations) {
		t.Errorf("metadata read as %+v", got.ObjectMeta)
	}
	if len(got.Spec.Containers) != 1 || !got.Spec.Containers[0].Resources.Requests["intel.com/sriov"].Equal(q["intel.com/sriov"]) {
		t.Errorf("containers read as %+v", got.Spec.Containers)
	}
	if len(got.Spec.InitContainers) != 1 || got.Spec.InitContainers[0].RestartPolicy == nil || *got.Spec.InitContainers[0].RestartPolicy != always ||
		!got.Spec.InitContainers[0].Resources.Limits["intel.com/sriov"].Equal(q["intel.com/sriov"]) {
		t.Errorf("init containers read as %+v", got.Spec.InitContainers)
	}
	if args.NodeNames == nil || !slices.Equal(*args.NodeNames, names) {
		t.Errorf("node names read as %v", args.NodeNames)
	}
}
