package v1alpha1

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// String is the wire form of a: "pod=ns/name uid=… container=… if=… pool=… node=… reservedUntil=…
// heldUntil=…",
// empty values left out, each value escaped (EscapeValue) so that it holds no space. A malformed
// entry (see Malformed) is its text as it was read.
func (a Allocation) String() string {
	if a.malformed != "" {
		return a.malformed
	}
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
		b.WriteString(EscapeValue(v))
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
	if a.HeldUntil != nil {
		add("heldUntil", a.HeldUntil.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// Malformed returns, for an entry whose wire form did not parse (a hand edit, a writer from
// another version), why; such an entry keeps its text across a write of its block, and matches
// no owner: its address is neither handed out nor freed until someone fixes or removes it.
func (a Allocation) Malformed() (problem string, bad bool) {
	return a.problem, a.malformed != ""
}

// ParseAllocation reads the wire form written by Allocation.String.
func ParseAllocation(s string) (Allocation, error) {
	var a Allocation
	if s == "" {
		return a, fmt.Errorf("allocation is empty")
	}
	for _, kv := range strings.Split(s, " ") {
		k, raw, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return Allocation{}, fmt.Errorf("allocation %q: %q is not key=value", s, kv)
		}
		v, err := unescapeValue(raw)
		if err != nil {
			return Allocation{}, fmt.Errorf("allocation %q: %s: %w", s, k, err)
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
		case "reservedUntil", "heldUntil":
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return Allocation{}, fmt.Errorf("allocation %q: %s: %w", s, k, err)
			}
			mt := metav1.NewTime(t)
			if k == "heldUntil" {
				a.HeldUntil = &mt
			} else {
				a.ReservedUntil = &mt
			}
		default:
			// Kept as malformed rather than dropped on the next write of the block.
			return Allocation{}, fmt.Errorf("allocation %q: unknown key %q", s, k)
		}
	}
	if a.Pool == "" {
		return Allocation{}, fmt.Errorf("allocation %q names no pool", s)
	}
	return a, nil
}

// MarshalJSON writes the wire form.
func (a Allocation) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON reads the wire form. A string that does not parse is not an error (one bad entry
// must not make its whole block, and every listing of its network, unreadable): it becomes a
// malformed entry (see Malformed). What is not a string at all is an error.
func (a *Allocation) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("an allocation is a string of key=value pairs: %w", err)
	}
	parsed, err := ParseAllocation(s)
	if err != nil {
		*a = Allocation{malformed: s, problem: err.Error()}
		if s == "" {
			a.malformed = " " // an empty entry stays recognisably malformed
		}
		return nil
	}
	*a = parsed
	return nil
}

// EscapeValue escapes a value of the wire form: a byte that is not printable ASCII, a space and
// '%' become %XX, so a value never splits the entry (a container ID or an interface name is
// whatever the runtime passed).
func EscapeValue(v string) string {
	if !strings.ContainsFunc(v, needsEscape) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if needsEscape(rune(c)) {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEscape(r rune) bool { return r <= ' ' || r == '%' || r >= 0x7f }

func unescapeValue(v string) (string, error) {
	if !strings.ContainsFunc(v, needsEscape) && !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '%':
			if i+2 >= len(v) {
				return "", fmt.Errorf("%q: incomplete %%-escape", v)
			}
			x, err := strconv.ParseUint(v[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("%q: bad %%-escape %q", v, v[i:i+3])
			}
			b.WriteByte(byte(x))
			i += 2
		case needsEscape(rune(c)):
			return "", fmt.Errorf("%q holds an unescaped space or control character", v)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// ParseKey reads a key of IPBlockSpec.Allocations: an address in its canonical form (the form
// netip.Addr.String writes), so that one address has one key.
func ParseKey(key string) (netip.Addr, error) {
	a, err := netip.ParseAddr(key)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("key %q is not an IP address", key)
	}
	if a.String() != key || a.Zone() != "" || a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("key %q is not an IP address in canonical form (%s)", key, a.Unmap().WithZone(""))
	}
	return a, nil
}

// Problems lists the entries of the block that the allocator and the reconciler skip: keys that
// are not canonical addresses and malformed values, each with why.
func (s *IPBlockSpec) Problems() map[string]string {
	var out map[string]string
	for key, al := range s.Allocations {
		var problem string
		if _, err := ParseKey(key); err != nil {
			problem = err.Error()
		} else if p, bad := al.Malformed(); bad {
			problem = p
		}
		if problem != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[key] = problem
		}
	}
	return out
}
