package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-project/plexus/webhook/inject"
	"github.com/plexus-project/plexus/webhook/nadcache"
	nadtesting "github.com/plexus-project/plexus/webhook/nadcache/testing"
	"github.com/plexus-project/plexus/webhook/server"
	servertesting "github.com/plexus-project/plexus/webhook/server/testing"
	"github.com/plexus-project/plexus/webhook/validate"
)

// FuzzAdmissionReview: whatever bytes the API server (or anyone reaching the port) posts to
// /mutate or /validate, the real handlers answer without panicking; an answer with HTTP 200 is
// an AdmissionReview carrying a response for the request's UID.
func FuzzAdmissionReview(f *testing.F) {
	ca := servertesting.NewCA(f, "fuzz-ca")
	cert, key := ca.WritePair(f, f.TempDir(), 1)
	lookup := nadtesting.New(&nadv1.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "net1", Annotations: map[string]string{"k8s.v1.cni.cncf.io/resourceName": "intel.com/x"}},
		Spec:       nadv1.NetworkAttachmentDefinitionSpec{Config: `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"plexus-ipam","range":"10.0.0.0/24"}}`},
	})
	iso := &nadcache.Isolation{Shared: []string{"default"}}
	s, err := server.New(server.Options{CertFile: cert, KeyFile: key,
		Mutator:   inject.New(lookup, inject.Options{HonorResources: true, Isolation: iso}),
		Validator: validate.New(lookup, validate.Options{Isolation: iso})})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	pod := `{"metadata":{"name":"p","annotations":{"k8s.v1.cni.cncf.io/networks":"net1"}},"spec":{"containers":[{"name":"a"}]}}`
	for _, seed := range []string{
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","namespace":"default","object":` + pod + `}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"UPDATE","namespace":"team","object":` + pod + `,"oldObject":{"spec":{"nodeName":"n"}}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"NetworkAttachmentDefinition"},"operation":"CREATE","namespace":"default","object":{"metadata":{"name":"n"},"spec":{"config":"{\"type\":\"x\"}"}}}}`,
		`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}`, `{}`, `null`, `[`, ``,
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, body string, mutate bool) {
		path := "/validate"
		if mutate {
			path = "/mutate"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			return // controller-runtime answers a body it cannot read with an HTTP error
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("HTTP 200 without an AdmissionReview response: %v: %s", err, rec.Body.String())
		}
		var in admissionv1.AdmissionReview
		if json.Unmarshal([]byte(body), &in) == nil && in.Request != nil && out.Response.UID != in.Request.UID {
			t.Fatalf("response for UID %q, request %q", out.Response.UID, in.Request.UID)
		}
	})
}
