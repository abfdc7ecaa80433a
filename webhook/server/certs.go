package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// Results of a read of the serving pair, as counted in plexus_webhook_certificate_reads_total.
const (
	ReadLoaded    = "loaded"    // a new pair is in service
	ReadUnchanged = "unchanged" // the files hold the pair already in service
	ReadError     = "error"     // the files do not hold a valid pair; the old one stays
)

// certs holds the serving pair and re-reads it when its files change (fsnotify on their
// directories, which also sees a Secret volume's symlink swap) or every interval. Every read is
// counted by result, so a test or an operator can tell "refused" from "not yet re-read".
type certs struct {
	certFile, keyFile string
	interval          time.Duration
	reads             *prometheus.CounterVec

	mu      sync.RWMutex
	current *tls.Certificate
	certPEM []byte
	keyPEM  []byte
}

func newCerts(certFile, keyFile string, interval time.Duration, reads *prometheus.CounterVec) (*certs, error) {
	c := &certs{certFile: certFile, keyFile: keyFile, interval: interval, reads: reads}
	if _, err := c.read(); err != nil {
		return nil, err
	}
	return c, nil
}

// GetCertificate is tls.Config's GetCertificate: the pair in service.
func (c *certs) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.current, nil
}

// read loads the files; a pair that does not load leaves the current one in service.
func (c *certs) read() (string, error) {
	result, err := c.load()
	c.reads.WithLabelValues(result).Inc()
	return result, err
}

func (c *certs) load() (string, error) {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return ReadError, fmt.Errorf("reading the serving certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return ReadError, fmt.Errorf("reading the serving key: %w", err)
	}
	c.mu.RLock()
	same := c.current != nil && bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM)
	c.mu.RUnlock()
	if same {
		return ReadUnchanged, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return ReadError, fmt.Errorf("loading the serving key pair %s, %s: %w", c.certFile, c.keyFile, err)
	}
	c.mu.Lock()
	c.current, c.certPEM, c.keyPEM = &pair, certPEM, keyPEM
	c.mu.Unlock()
	return ReadLoaded, nil
}

// run re-reads the pair on file events and every interval until ctx ends. It fails only when
// the files' directories cannot be watched at all.
func (c *certs) run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching the serving pair: %w", err)
	}
	defer w.Close()
	for _, d := range []string{filepath.Dir(c.certFile), filepath.Dir(c.keyFile)} {
		if err := w.Add(d); err != nil {
			return fmt.Errorf("watching directory %s of the serving pair: %w", d, err)
		}
	}
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			log.Error(err, "watching the serving pair; the poll still re-reads it", "interval", c.interval.String())
			continue
		case <-w.Events:
		case <-tick.C:
		}
		switch result, err := c.read(); result {
		case ReadLoaded:
			log.Info("serving a new certificate", "certFile", c.certFile)
		case ReadError:
			log.Error(err, "error re-reading certificate; the previous pair stays in service")
		}
	}
}
