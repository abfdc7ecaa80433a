package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-project/plexus/test/controlplane"
	servertesting "github.com/plexus-project/plexus/webhook/server/testing"
)

// syncBuffer is a bytes.Buffer safe for the process's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBinary runs the built plexus-webhook with its documented flags, has the API server call
// it, and rotates its serving pair under load: a good pair is picked up, a bad one is logged
// and the old one kept, and the process never exits.
func TestBinary(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	cp := controlplane.Start(t, controlplane.Options{})
	dir := t.TempDir()
	bin := filepath.Join(dir, "plexus-webhook")
	build := exec.Command("go", "build", "-o", bin, "./cmd/plexus-webhook")
	build.Dir = cp.RepoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building plexus-webhook: %v\n%s", err, out)
	}

	ca := servertesting.NewCA(t, "binary-test-ca")
	cert, key := ca.WritePair(t, dir, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	var logs syncBuffer
	id := webhookIdentity(t, cp)
	cmd := exec.Command(bin, "--kubeconfig", id.Kubeconfig,
		"--bind-address", "127.0.0.1", "--port", strconv.Itoa(port),
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-poll-interval", "200ms", "--v", "1", "--log-format", "json")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("plexus-webhook exited with %v on SIGTERM\n%s", err, logs.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("plexus-webhook did not stop on SIGTERM")
		}
	})

	e := &env{cp: cp, c: cp.Client, url: "https://127.0.0.1:" + strconv.Itoa(port), ca: ca,
		https: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}}
	e.register(t)
	ctx := context.Background()
	e.createNAD(t, sriovNAD("sriov-n3"))
	e.createNAD(t, sriovNAD("sriov-n6"))
	e.createNAD(t, macvlanNAD("macvlan-n4"))
	e.waitNAD(t, "sriov-n3")
	e.waitNAD(t, "sriov-n6")
	e.waitNAD(t, "macvlan-n4")

	admit := func(name string) {
		t.Helper()
		p := acceptancePod(name)
		if err := e.c.Create(ctx, p); err != nil {
			t.Fatalf("creating %s: %v\nwebhook logs:\n%s", name, err, logs.String())
		}
		got := &corev1.Pod{}
		if err := e.c.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
			t.Fatal(err)
		}
		if l := got.Spec.Containers[1].Resources.Limits[sriovResource]; l.String() != "2" {
			t.Errorf("%s: %s limit %s, want 2", name, sriovResource, l.String())
		}
	}
	admit("before-rotation")
	if n := servedSerial(t, e); n != 1 {
		t.Fatalf("serial %d, want 1", n)
	}

	// Rotation to a good pair from the same CA.
	ca.WritePair(t, dir, 2)
	eventually(t, "serving the new pair", func() error {
		if n := servedSerial(t, e); n != 2 {
			return errorf("serial %d, want 2", n)
		}
		return nil
	})
	admit("after-rotation")

	// A bad pair: the old one stays in service, an error is logged, the process keeps running.
	const reloadError = "error re-reading certificate"
	errorsBefore := strings.Count(logs.String(), reloadError)
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "logging the bad pair", func() error {
		if strings.Count(logs.String(), reloadError) == errorsBefore {
			return errorf("no %q logged for the bad key yet", reloadError)
		}
		return nil
	})
	if n := servedSerial(t, e); n != 2 {
		t.Fatalf("after a bad pair, serial %d, want the old 2", n)
	}
	admit("after-bad-pair")
	select {
	case err := <-exited:
		t.Fatalf("plexus-webhook exited after a bad pair: %v\n%s", err, logs.String())
	default:
	}

	// Refusals are logged at -v 1.
	_ = e.c.Create(ctx, pod("refused", "sriov-n9"))
	eventually(t, "logging the refusal", func() error {
		if !strings.Contains(logs.String(), "refusing pod") {
			return errorf("no refusal logged:\n%s", logs.String())
		}
		return nil
	})
	t.Logf("webhook logs:\n%s", logs.String())
}

func servedSerial(t *testing.T, e *env) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", strings.TrimPrefix(e.url, "https://"), &tls.Config{RootCAs: e.ca.Pool()})
	if err != nil {
		t.Fatalf("TLS handshake with the webhook: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}
