package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	extenderv1 "k8s.io/kube-scheduler/extender/v1"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/extender"
)

const vf = "intel.com/sriov_netdevice"

func cluster() *extender.Cluster {
	c := extender.NewCluster(extender.Options{})
	for name, n := range map[string]int64{"a": 2, "b": 0} {
		c.SetNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{vf: *resource.NewQuantity(n, resource.DecimalSI)}}})
	}
	c.SetNAD(&nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "net", Annotations: map[string]string{network.ResourceNameAnnotation: vf}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","type":"plexus-sriov"}`},
	})
	return c
}

func pod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", UID: "u1",
		Annotations: map[string]string{network.NetworksAnnotation: "net"}}}
}

func post(t *testing.T, h http.Handler, path string, body any) *httptest.ResponseRecorder {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b)))
	return rec
}

func TestFilterOverHTTP(t *testing.T) {
	ready := false
	s, err := New(Options{Decider: cluster(), Ready: func() bool { return ready }})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	names := []string{"a", "b"}
	var res extenderv1.ExtenderFilterResult

	// Before the caches sync: a clear error, and /readyz fails.
	if err := json.NewDecoder(post(t, h, "/filter", extenderv1.ExtenderArgs{Pod: pod(), NodeNames: &names}).Body).Decode(&res); err != nil || res.Error != NotReadyMessage {
		t.Fatalf("filter before sync: %+v, %v", res, err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before sync: %d", rec.Code)
	}
	ready = true

	// nodeCacheCapable: names in, names out.
	res = extenderv1.ExtenderFilterResult{}
	if err := json.NewDecoder(post(t, h, "/filter", extenderv1.ExtenderArgs{Pod: pod(), NodeNames: &names}).Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	if res.Error != "" || res.NodeNames == nil || len(*res.NodeNames) != 1 || (*res.NodeNames)[0] != "a" {
		t.Fatalf("filter by names: %+v", res)
	}
	if !strings.Contains(res.FailedAndUnresolvableNodes["b"], "this node has no intel.com/sriov_netdevice VFs") {
		t.Fatalf("reason for b: %q", res.FailedAndUnresolvableNodes["b"])
	}

	// Not nodeCacheCapable: Node objects in, Node objects out.
	list := &corev1.NodeList{Items: []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, {ObjectMeta: metav1.ObjectMeta{Name: "b"}}}}
	res = extenderv1.ExtenderFilterResult{}
	p := pod()
	p.UID = "u2"
	if err := json.NewDecoder(post(t, h, "/filter", extenderv1.ExtenderArgs{Pod: p, Nodes: list}).Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	if res.Nodes == nil || len(res.Nodes.Items) != 1 || res.Nodes.Items[0].Name != "a" || res.NodeNames != nil {
		t.Fatalf("filter by objects: %+v", res)
	}

	// Prioritize answers the nodes scored above the lowest, 0-10 (b, which the pod does not
	// fit, scores 0 and is left out: the scheduler adds it nothing).
	var hp extenderv1.HostPriorityList
	if err := json.NewDecoder(post(t, h, "/prioritize", extenderv1.ExtenderArgs{Pod: pod(), NodeNames: &names}).Body).Decode(&hp); err != nil {
		t.Fatal(err)
	}
	if len(hp) != 1 || hp[0].Host != "a" || hp[0].Score == 0 || hp[0].Score > extenderv1.MaxExtenderPriority {
		t.Fatalf("prioritize: %+v", hp)
	}

	// Metrics count the nodes dropped by reason and the calls.
	rec = httptest.NewRecorder()
	s.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{`plexus_extender_filtered_nodes_total{reason="vf-pool-absent"} 2`, `plexus_extender_request_duration_seconds_count{verb="filter"} 3`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	s, err := New(Options{Decider: cluster(), MaxRequestBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 50)
	for i := range names {
		names[i] = "node-with-a-long-name"
	}
	var res extenderv1.ExtenderFilterResult
	_ = json.NewDecoder(post(t, s.Handler(), "/filter", extenderv1.ExtenderArgs{Pod: pod(), NodeNames: &names}).Body).Decode(&res)
	if !strings.Contains(res.Error, "larger than 100 bytes") {
		t.Fatalf("oversized body: %+v", res)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/filter", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /filter: %d", rec.Code)
	}
	if _, err := New(Options{Decider: cluster(), CertFile: "x"}); err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
}

// Plain HTTP is refused on any address but loopback.
func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	s, err := New(Options{Decider: cluster()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := s.Run(t.Context(), ln); err == nil || !strings.Contains(err.Error(), "only served on loopback") {
		t.Fatalf("Run on %s: %v", ln.Addr(), err)
	}
}

type fakeBinder struct {
	got []*corev1.Binding
	err error
}

func (f *fakeBinder) Bind(_ context.Context, b *corev1.Binding) error {
	f.got = append(f.got, b)
	return f.err
}

// /bind creates the Binding and tells the cluster where the pod went before answering.
func TestBind(t *testing.T) {
	c := cluster()
	fb := &fakeBinder{}
	s, err := New(Options{Decider: c, Binder: fb})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	names := []string{"a"}
	// p is admitted on a (2 VFs); a second 2-VF pod does not fit until p is bound elsewhere.
	p := pod()
	p.Annotations[network.NetworksAnnotation] = "net,net"
	post(t, h, "/filter", extenderv1.ExtenderArgs{Pod: p, NodeNames: &names})
	var res extenderv1.ExtenderBindingResult
	if err := json.NewDecoder(post(t, h, "/bind", extenderv1.ExtenderBindingArgs{PodName: "p", PodNamespace: "default", PodUID: "u1", Node: "a"}).Body).Decode(&res); err != nil || res.Error != "" {
		t.Fatalf("bind: %+v %v", res, err)
	}
	if len(fb.got) != 1 || fb.got[0].Name != "p" || fb.got[0].UID != "u1" || fb.got[0].Target.Name != "a" || fb.got[0].Target.Kind != "Node" {
		t.Fatalf("bindings %+v", fb.got)
	}
	fb.err = errors.New("pods \"p\" not found")
	_ = json.NewDecoder(post(t, h, "/bind", extenderv1.ExtenderBindingArgs{PodName: "p", PodNamespace: "default", PodUID: "u1", Node: "a"}).Body).Decode(&res)
	if !strings.Contains(res.Error, `binding pod default/p to node a: pods "p" not found`) {
		t.Fatalf("failed bind: %+v", res)
	}
}

// An answer over net/http's 4 KiB buffer goes out with its length, not chunked: kube-scheduler's
// client stops reading at the end of the JSON value and drops a chunked answer's connection.
func TestAnswersCarryLength(t *testing.T) {
	s, err := New(Options{Decider: cluster()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("node-with-a-long-name-%d", i)
	}
	for _, path := range []string{"/filter", "/prioritize"} {
		b, _ := json.Marshal(extenderv1.ExtenderArgs{Pod: pod(), NodeNames: &names})
		resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/filter" && len(body) <= 4096 {
			t.Fatalf("%s: a %d-byte answer does not test the 4 KiB buffer", path, len(body))
		}
		if len(resp.TransferEncoding) > 0 || resp.ContentLength != int64(len(body)) {
			t.Errorf("%s: %d bytes sent with Content-Length %d, transfer encoding %v", path, len(body), resp.ContentLength, resp.TransferEncoding)
		}
	}
}
