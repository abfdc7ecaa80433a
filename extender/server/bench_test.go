package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/plexus-project/plexus/extender"
)

// BenchmarkFilterHandler is one /filter call over 5,000 nodes through the handler: decoding,
// the decision and encoding, without the network.
func BenchmarkFilterHandler(b *testing.B) {
	c := cluster()
	names := make([]string, 5000)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i)
		c.SetNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: names[i]}, Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{vf: *resource.NewQuantity(8, resource.DecimalSI)}}})
	}
	s, err := New(Options{Decider: c})
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(extenderv1.ExtenderArgs{Pod: pod(), NodeNames: &names})
	h := s.Handler()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/filter", bytes.NewReader(body)))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

var _ = extender.Spread
