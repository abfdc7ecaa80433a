package inject

import (
	"encoding/json"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
)

// FuzzInject: for any networks annotation and container layout, the injector either refuses or
// returns a patch that applies to the pod, and a second run on the result is empty.
func FuzzInject(f *testing.F) {
	for _, s := range []string{
		"ns1/net1@eth0", "net1", "ns1/net1,net2", "net2,net2,rack1", "sriov-n3, sriov-n6, macvlan-n4",
		`[{"name":"net1","namespace":"ns1","container":"b"},{"name":"net2"}]`, "a/b/c", "x@y@z", `[{"name":"net1"`,
	} {
		f.Add(s, uint8(2), true, false)
		f.Add(s, uint8(1), false, true)
	}
	f.Fuzz(func(t *testing.T, networks string, containers uint8, existing, honor bool) {
		names := []string{"a", "b", "c"}[:1+int(containers)%3]
		pod := podWith(networks, names...)
		if existing {
			pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{sriov: q("1"), corev1.ResourceCPU: q("1")}
			pod.Spec.Volumes = []corev1.Volume{{Name: "data"}}
			pod.Spec.NodeSelector = map[string]string{"disk": "ssd"}
		}
		in := New(lookup(), Options{HonorResources: honor})
		ops, err := in.Inject(pod.DeepCopy(), "default")
		if err != nil {
			return
		}
		raw, _ := json.Marshal(pod)
		pb, _ := json.Marshal(ops)
		patch, err := jsonpatchapply.DecodePatch(pb)
		if err != nil {
			t.Fatalf("patch %s does not decode: %v", pb, err)
		}
		res, err := patch.Apply(raw)
		if err != nil {
			t.Fatalf("patch %s does not apply: %v", pb, err)
		}
		out := &corev1.Pod{}
		if err := json.Unmarshal(res, out); err != nil {
			t.Fatal(err)
		}
		again, err := in.Inject(out, "default")
		if err != nil || len(again) != 0 {
			t.Fatalf("not idempotent: %v %+v", err, again)
		}
	})
}
