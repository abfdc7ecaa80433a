package v1alpha1

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAllocationWireForm(t *testing.T) {
	until := metav1.NewTime(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	for _, a := range []Allocation{
		{Pool: "p", ContainerID: "c", IfName: "net1", PodNamespace: "ns", PodName: "web-0", PodUID: "u", Node: "n1"},
		{Pool: "p", PodNamespace: "ns", PodName: "db-0", ReservedUntil: &until},
		{Pool: "p", ContainerID: "c"},
	} {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var got Allocation
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.String() != a.String() || (a.ReservedUntil != nil) != (got.ReservedUntil != nil) {
			t.Fatalf("round trip of %s gave %s", b, got.String())
		}
	}
	b, _ := json.Marshal(Allocation{Pool: "p", ContainerID: "c", IfName: "net1", PodNamespace: "ns", PodName: "web-0", PodUID: "u", Node: "n1"})
	if string(b) != `"pod=ns/web-0 uid=u container=c if=net1 pool=p node=n1"` {
		t.Fatalf("wire form %s", b)
	}
	var a Allocation
	if err := json.Unmarshal([]byte(`{"pool":"p"}`), &a); err == nil {
		t.Fatal("an object was accepted as an allocation")
	}
}
