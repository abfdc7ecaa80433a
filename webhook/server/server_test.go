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

	dto "github.com/prometheus/client_model/go"
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
	srv    *Server
}

// tokenFilter stands in for metricsauth.Filter (TokenReview and SubjectAccessReview against a
// real API server are tested in test/integration/webhook): only "Bearer scraper" may read.
func tokenFilter(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer scraper" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func start(t *testing.T, ready func() bool) *started {
	t.Helper()
	return startWith(t, Options{Ready: ready, MetricsFilter: tokenFilter})
}

func startWith(t *testing.T, opts Options) *started {
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
	opts.CertFile, opts.KeyFile, opts.CertPollInterval, opts.Mutator, opts.Validator = cert, key, 100*time.Millisecond, allow, deny
	s, err := New(opts)
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
	return &started{url: "https://" + ln.Addr().String(), client: client, ca: ca, dir: dir, srv: s}
}

func (s *started) get(t *testing.T, path string) (int, string) {
	t.Helper()
	return s.getAs(t, path, "scraper")
}

func (s *started) getAs(t *testing.T, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
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
	if code, _ := s.getAs(t, "/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without a token = %d, want 401", code)
	}
	if code, _ := s.getAs(t, "/healthz", ""); code != 200 {
		t.Errorf("/healthz without a token = %d: probes carry none", code)
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

	// A bad pair (a key that does not match) keeps the old one; the server keeps serving. The
	// test waits for the server to have read and refused the files (the error count grows), so
	// "refused" is never mistaken for "not re-read yet".
	c3, _ := s.ca.Issue(t, 3)
	refused := s.reads(ReadError)
	if err := os.WriteFile(filepath.Join(s.dir, "tls.crt"), c3, 0o600); err != nil {
		t.Fatal(err)
	}
	s.waitReads(t, ReadError, refused)
	if got := s.serial(t); got != 2 {
		t.Fatalf("after a mismatched pair, serial = %d, want the old 2", got)
	}
	refused = s.reads(ReadError)
	if err := os.WriteFile(filepath.Join(s.dir, "tls.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.waitReads(t, ReadError, refused)
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

// reads is how many reads of the serving pair ended with result.
func (s *started) reads(result string) float64 {
	var m dto.Metric
	_ = s.srv.metrics.certReads.WithLabelValues(result).Write(&m)
	return m.GetCounter().GetValue()
}

// waitReads waits until a read ends with result after the count was before.
func (s *started) waitReads(t *testing.T, result string, before float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.reads(result) == before {
		if time.Now().After(deadline) {
			t.Fatalf("no read of the serving pair ended %q in 5s", result)
		}
		time.Sleep(10 * time.Millisecond)
	}
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

func TestMetricsNeedAFilter(t *testing.T) {
	s := startWith(t, Options{})
	if code, _ := s.get(t, "/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics without a MetricsFilter = %d, want 404: never served unauthenticated", code)
	}
}

// TestTimeouts: a peer that stalls in the header, in the body or on an idle keep-alive
// connection is cut off by the server, not held forever.
func TestTimeouts(t *testing.T) {
	const limit = 300 * time.Millisecond
	s := startWith(t, Options{ReadHeaderTimeout: limit, ReadTimeout: limit, IdleTimeout: limit, MetricsFilter: tokenFilter})
	cases := []struct {
		name string
		send string
	}{
		{"stalled header", "POST /mutate HTTP/1.1\r\nHost: x\r\n"},
		{"stalled body", "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"},
		{"idle keep-alive", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", strings.TrimPrefix(s.url, "https://"), &tls.Config{RootCAs: s.ca.Pool()})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.Copy(io.Discard, conn) // returns when the server closes the connection
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the server kept the connection open for 10s (limit %s)", limit)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("closed after %s, limit %s", took, limit)
			}
		})
	}
}
