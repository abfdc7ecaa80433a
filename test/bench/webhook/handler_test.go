package webhook

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-project/plexus/webhook/inject"
	nadtesting "github.com/plexus-project/plexus/webhook/nadcache/testing"
	"github.com/plexus-project/plexus/webhook/server"
	servertesting "github.com/plexus-project/plexus/webhook/server/testing"
	"github.com/plexus-project/plexus/webhook/validate"
)

// BenchmarkHandler measures what one admission costs the webhook itself, without TLS, the
// network or the load driver: decoding the AdmissionReview, injecting or validating, encoding
// the answer. It is the figure that does not depend on how busy the machine is.
func BenchmarkHandler(b *testing.B) {
	var list []*nadv1.NetworkAttachmentDefinition
	for i := 0; i < nads; i++ {
		list = append(list, benchNAD(i))
	}
	lookup := nadtesting.New(list...)
	ca := servertesting.NewCA(b, "bench-ca")
	cert, key := ca.WritePair(b, b.TempDir(), 1)
	srv, err := server.New(server.Options{CertFile: cert, KeyFile: key,
		Mutator: inject.New(lookup, inject.Options{}), Validator: validate.New(lookup, validate.Options{})})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	rnd := rand.New(rand.NewPCG(3, 4))
	bodies := make([][]byte, admissions)
	for i := range bodies {
		bodies[i] = review(b, i, rnd)
	}
	for _, path := range []string{"/mutate", "/validate"} {
		b.Run(path[1:], func(b *testing.B) {
			run := func() {
				for _, body := range bodies {
					req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
						b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
					}
				}
			}
			run() // warm up
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for n := 0; n < b.N; n++ {
				run()
			}
			wall, cpu := time.Since(start)/time.Duration(b.N*len(bodies)), (cpuTime()-cpu0)/time.Duration(b.N*len(bodies))
			b.ReportMetric(float64(wall.Nanoseconds())/1000, "µs/adm")
			b.ReportMetric(float64(cpu.Nanoseconds())/1000, "cpu-µs/adm")
			fmt.Printf("plexus-webhook %s handler alone (no TLS, no network): %v wall, %v CPU per AdmissionReview over %d reviews\n",
				path, wall, cpu, b.N*len(bodies))
		})
	}
}
