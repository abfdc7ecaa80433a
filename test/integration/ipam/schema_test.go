package ipam

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// TestIPBlockSchemaRefusesMalformedEntries: the IPBlock CRD of charts/plexus/crds refuses an
// entry whose key is not an address in canonical form, or whose value is not
// space-separated key=value pairs, so a hand edit cannot store one; a good block is accepted.
func TestIPBlockSchemaRefusesMalformedEntries(t *testing.T) {
	e := start(t)
	ctx := ctxT(t, 2*time.Minute)
	good := `"10.9.0.1":"pod=ns/p uid=u container=c if=net1 pool=p node=n1"`
	for _, tc := range []struct {
		name, allocations, want string
	}{
		{"a key that is not an address", `"nonsense":"pool=p"`, "must be an IP address in canonical form"},
		{"a key not in canonical form", `"10.9.0.010":"pool=p"`, "must be an IP address in canonical form"},
		{"a value with a space inside a value", `"10.9.0.2":"pod=ns/a b uid=x"`, "should match"},
		{"an empty value", `"10.9.0.2":""`, "should match"},
		{"good", good, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b v1alpha1.IPBlock
			raw := `{"metadata":{"name":"schema-` + strings.ReplaceAll(tc.name, " ", "-") + `"},"spec":{"cidr":"10.9.0.0/27","node":"n1","allocations":{` + tc.allocations + `}}}`
			if err := json.Unmarshal([]byte(raw), &b); err != nil {
				t.Fatal(err)
			}
			b.ObjectMeta = metav1.ObjectMeta{Name: b.Name}
			err := e.cp.Client.Create(ctx, &b)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("a good block was refused: %v", err)
				}
				return
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want Invalid naming %q, got %v", tc.want, err)
			}
		})
	}
}
