package v1alpha1

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FuzzAllocationText: any entry text an IPBlock may hold decodes (as an allocation or as a
// malformed entry, never an error that fails the block), is written back as it was when it is
// malformed, and re-encodes to a form that parses to the same allocation when it is not.
func FuzzAllocationText(f *testing.F) {
	for _, s := range []string{
		"pod=ns/web-0 uid=u container=c if=net1 pool=p node=n1",
		"pod=ns/db-0 pool=p reservedUntil=2026-11-22T12:00:00Z",
		"pod=ns/a b uid=x", "", "container=%zz", "if=net%201", "=x", "pod=ns/a  uid=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw, _ := json.Marshal(s)
		json.Unmarshal(raw, &s) // what JSON can hold: invalid UTF-8 is replaced by U+FFFD
		var a Allocation
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("%q failed to decode: %v", s, err)
		}
		if _, bad := a.Malformed(); bad {
			if s != "" && a.String() != s {
				t.Fatalf("malformed %q written back as %q", s, a.String())
			}
			return
		}
		again, err := ParseAllocation(a.String())
		if err != nil || !same(a, again) {
			t.Fatalf("%q -> %q -> %+v, %v", s, a.String(), again, err)
		}
	})
}

// FuzzAllocationFields: whatever the runtime passes as container ID or interface name (and
// whatever ends up in the other fields), the wire form is one space-free value per field and
// parses back to the same allocation.
func FuzzAllocationFields(f *testing.F) {
	f.Add("p", "c", "net1", "ns", "web-0", "u", "n1", int64(0))
	f.Add("p", "id with space", "net%1", "", "", "", "", int64(1700000000))
	f.Fuzz(func(t *testing.T, pool, container, ifName, ns, name, uid, node string, until int64) {
		a := Allocation{Pool: pool, ContainerID: container, IfName: ifName, PodNamespace: ns, PodName: name, PodUID: uid, Node: node}
		if until > 0 && until < 1<<40 {
			mt := metav1.NewTime(time.Unix(until, 0).UTC())
			a.ReservedUntil = &mt
		}
		if pool == "" {
			return // the allocator always names the pool; an entry without one is malformed
		}
		got, err := ParseAllocation(a.String())
		if err != nil {
			t.Fatalf("%+v wrote %q, which does not parse: %v", a, a.String(), err)
		}
		// The pod field holds namespace/name: a namespace with a '/' cannot be told apart, and
		// namespaces never have one.
		if ns == "" && name != "" || containsSlash(ns) {
			return
		}
		if !same(a, got) {
			t.Fatalf("%+v wrote %q, read back as %+v", a, a.String(), got)
		}
	})
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

func same(a, b Allocation) bool {
	if (a.ReservedUntil == nil) != (b.ReservedUntil == nil) ||
		(a.ReservedUntil != nil && !a.ReservedUntil.Equal(b.ReservedUntil)) {
		return false
	}
	a.ReservedUntil, b.ReservedUntil = nil, nil
	return a == b
}
