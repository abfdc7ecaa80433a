package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/plexus-project/plexus/webhook"
	servertesting "github.com/plexus-project/plexus/webhook/server/testing"
)

type started struct {
	url    string
	client *http.Client
	ca     *servertesting.CA
	dir    string
}

func start(t *testing.T, ready func() bool) *started {
	t.Helper()
	ca := servertesting.NewCA(t, "test-ca")
	dir := t.TempDir()
	cert, key := ca.WritePair(t, dir, 1)
	deny := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return webhook.Denied(webhook.ReasonUnknownNetwork, "network 1 (\"default/x\"): does not exist")
	})
	allow := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return webhook.Allowed(webhook.ReasonNoNetworks)
	})
	s, err := New(Options{CertFile: cert, KeyFile: key, CertPollInterval: 100 * time.Millisecond, Mutator: allow, Validator: deny, Ready: ready})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, DisableKeepAlives: true,
	}}
	return &started{url: "https://" + ln.Addr().String(), client: client, ca: ca, dir: dir}
}

func (s *started) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := s.client.Get(s.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *started) review(t *testing.T, path string) *admissionv1.AdmissionResponse {
	t.Helper()
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &admissionv1.AdmissionRequest{UID: "u1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create},
	})
	resp, err := s.client.Post(s.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d: a refusal must be an AdmissionResponse, never an HTTP error", path, resp.StatusCode)
	}
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Response
}

func TestEndpoints(t *testing.T) {
	var ready atomic.Bool
	s := start(t, ready.Load)
	if code, _ := s.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := s.get(t, "/readyz"); code != 503 || !strings.Contains(body, "cache has not synced") {
		t.Errorf("/readyz before sync = %d %q", code, body)
	}
	ready.Store(true)
	if code, _ := s.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz after sync = %d", code)
	}
	if r := s.review(t, "/mutate"); !r.Allowed || r.UID != "u1" {
		t.Errorf("/mutate = %+v", r)
	}
	r := s.review(t, "/validate")
	if r.Allowed || r.Result.Code != 403 || !strings.Contains(r.Result.Message, "does not exist") {
		t.Errorf("/validate = %+v", r)
	}
	_, metrics := s.get(t, "/metrics")
	for _, want := range []string{
		`plexus_webhook_admission_decisions_total{allowed="false",reason="UnknownNetwork",webhook="validate"} 1`,
		`plexus_webhook_admission_decisions_total{allowed="true",reason="NoNetworks",webhook="mutate"} 1`,
		`plexus_webhook_admission_duration_seconds_count{webhook="validate"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// serial returns the serial number of the certificate the server presents.
func (s *started) serial(t *testing.T) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.url, "https://"), &tls.Config{RootCAs: s.ca.Pool()})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestCertificateReload(t *testing.T) {
	s := start(t, nil)
	if got := s.serial(t); got != 1 {
		t.Fatalf("serial = %d, want 1", got)
	}
	// A new pair is picked up.
	s.ca.WritePair(t, s.dir, 2)
	waitSerial(t, s, 2)

	// A bad pair (a key that does not match) keeps the old one; the server keeps serving.
	c3, _ := s.ca.Issue(t, 3)
	if err := os.WriteFile(filepath.Join(s.dir, "tls.crt"), c3, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := s.serial(t); got != 2 {
		t.Fatalf("after a mismatched pair, serial = %d, want the old 2", got)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "tls.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := s.serial(t); got != 2 {
		t.Fatalf("after a garbage key, serial = %d, want the old 2", got)
	}
	if r := s.review(t, "/mutate"); !r.Allowed {
		t.Fatalf("not serving after a bad pair: %+v", r)
	}
	// A good pair again, replaced by rename as a Secret volume does.
	c4, k4 := s.ca.Issue(t, 4)
	for name, b := range map[string][]byte{"tls.crt": c4, "tls.key": k4} {
		tmp := filepath.Join(s.dir, "."+name)
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	waitSerial(t, s, 4)
}

func waitSerial(t *testing.T, s *started, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := s.serial(t)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serial = %d, want %d after reload", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNewNeedsAPair(t *testing.T) {
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "--tls-cert-file") {
		t.Errorf("err = %v", err)
	}
	if _, err := New(Options{CertFile: "/nonexistent/c", KeyFile: "/nonexistent/k"}); err == nil {
		t.Error("a missing pair must fail at start")
	}
}
