package metricsauth

import (
	"crypto/x509"
	"net"
	"testing"
)

func TestSelfSignedTLS(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "node-1.example"} {
		cfg, err := SelfSignedTLS(host)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Certificates) != 1 || cfg.MinVersion == 0 {
			t.Fatalf("%s: config %+v", host, cfg)
		}
		leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("%s: certificate does not name it: %v", host, err)
		}
		if ip := net.ParseIP(host); ip != nil && len(leaf.IPAddresses) == 0 {
			t.Errorf("%s: no IP SAN", host)
		}
	}
}
