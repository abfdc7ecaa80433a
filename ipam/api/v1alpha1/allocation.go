package v1alpha1

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// String is the wire form of a: "pod=ns/name uid=… container=… if=… pool=… node=… reservedUntil=…",
// empty values left out.
func (a Allocation) String() string {
	var b strings.Builder
	add := func(k, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	if a.PodNamespace != "" || a.PodName != "" {
		add("pod", a.PodNamespace+"/"+a.PodName)
	}
	add("uid", a.PodUID)
	add("container", a.ContainerID)
	add("if", a.IfName)
	add("pool", a.Pool)
	add("node", a.Node)
	if a.ReservedUntil != nil {
		add("reservedUntil", a.ReservedUntil.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// ParseAllocation reads the wire form written by Allocation.String.
func ParseAllocation(s string) (Allocation, error) {
	var a Allocation
	for _, kv := range strings.Fields(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return a, fmt.Errorf("allocation %q: %q is not key=value", s, kv)
		}
		switch k {
		case "pod":
			a.PodNamespace, a.PodName, _ = strings.Cut(v, "/")
		case "uid":
			a.PodUID = v
		case "container":
			a.ContainerID = v
		case "if":
			a.IfName = v
		case "pool":
			a.Pool = v
		case "node":
			a.Node = v
		case "reservedUntil":
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return a, fmt.Errorf("allocation %q: reservedUntil: %w", s, err)
			}
			mt := metav1.NewTime(t)
			a.ReservedUntil = &mt
		}
	}
	return a, nil
}

// MarshalJSON writes the wire form.
func (a Allocation) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON reads the wire form.
func (a *Allocation) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("an allocation is a string of key=value pairs: %w", err)
	}
	parsed, err := ParseAllocation(s)
	if err != nil {
		return err
	}
	*a = parsed
	return nil
}
