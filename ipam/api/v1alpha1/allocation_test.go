package v1alpha1

import (
	"encoding/json"
	"strings"
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
		{Pool: "p", Node: "n1", HeldUntil: &until},
	} {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var got Allocation
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.String() != a.String() || (a.ReservedUntil != nil) != (got.ReservedUntil != nil) || (a.HeldUntil != nil) != (got.HeldUntil != nil) {
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

func TestAllocationEscapes(t *testing.T) {
	a := Allocation{Pool: "p", ContainerID: "id with space", IfName: "net%1", PodNamespace: "ns", PodName: "é"}
	s := a.String()
	if strings.ContainsAny(s[len("pod=ns/%C3%A9 "):], "é") || strings.Count(s, " ") != 3 {
		t.Fatalf("wire form %q", s)
	}
	got, err := ParseAllocation(s)
	if err != nil || got.ContainerID != a.ContainerID || got.IfName != a.IfName || got.PodName != a.PodName {
		t.Fatalf("round trip of %q: %+v %v", s, got, err)
	}
}

// TestMalformedEntriesAreKept: a block with hand-edited entries decodes; the bad entries are
// reported by Problems, match nothing, and are written back as they were.
func TestMalformedEntriesAreKept(t *testing.T) {
	in := `{"spec":{"cidr":"10.0.0.0/27","node":"n1","allocations":{
		"10.0.0.2":"pod=ns/a uid=u container=c if=net1 pool=p",
		"10.0.0.3":"pod=ns/a b uid=x",
		"10.0.0.4":"pod=ns/c reservedUntil=tomorrow",
		"10.0.0.5":"",
		"10.0.0.6":"container=%zz",
		"not-an-ip":"pool=p container=c2",
		"10.0.0.010":"pool=p container=c3"}}}`
	var b IPBlock
	if err := json.Unmarshal([]byte(in), &b); err != nil {
		t.Fatal(err)
	}
	problems := b.Spec.Problems()
	for _, key := range []string{"10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "not-an-ip", "10.0.0.010"} {
		if problems[key] == "" {
			t.Errorf("entry %s not reported: %v", key, problems)
		}
	}
	if len(problems) != 6 {
		t.Errorf("problems %v", problems)
	}
	if al := b.Spec.Allocations["10.0.0.2"]; al.ContainerID != "c" {
		t.Fatalf("good entry %+v", al)
	}
	if al := b.Spec.Allocations["10.0.0.3"]; al.ContainerID != "" || al.PodName != "" {
		t.Fatalf("a malformed entry matches an owner: %+v", al)
	}
	out, err := json.Marshal(b.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]map[string]map[string]string
	json.Unmarshal(out, &back)
	if got := back["spec"]["allocations"]; got["10.0.0.3"] != "pod=ns/a b uid=x" || got["10.0.0.4"] != "pod=ns/c reservedUntil=tomorrow" || got["10.0.0.6"] != "container=%zz" {
		t.Fatalf("written back: %v", got)
	}
}
