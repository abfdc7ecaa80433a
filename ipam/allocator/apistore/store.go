package apistore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/plexus-project/plexus/ipam/allocator"
	"github.com/plexus-project/plexus/ipam/api/v1alpha1"
)

// Store talks to the API server.
type Store struct {
	http *http.Client
	base string
}

var _ allocator.Store = (*Store)(nil)

// New returns a Store over cfg. requestTimeout bounds each request (0: none beyond the context).
func New(cfg *rest.Config, requestTimeout time.Duration) (*Store, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = requestTimeout
	// HTTP/1.1: a plugin process sends two or three requests and exits; HTTP/2's connection
	// setup and flow control cost both ends more than they give back here.
	cfg.TLSClientConfig.NextProtos = []string{"http/1.1"}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building an HTTP client for %s: %w", cfg.Host, err)
	}
	host := cfg.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	host = strings.TrimSuffix(host, "/") + strings.TrimSuffix(cfg.APIPath, "/")
	return &Store{http: hc, base: host + "/apis/" + v1alpha1.GroupVersion.String()}, nil
}

// FromKubeconfig returns a Store for the cluster of the kubeconfig file at path.
func FromKubeconfig(path string, requestTimeout time.Duration) (*Store, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s (set ipam.kubernetes.kubeconfig to a readable kubeconfig): %w", path, err)
	}
	return New(cfg, requestTimeout)
}

// ListBlocks implements allocator.Store.
func (s *Store) ListBlocks(ctx context.Context, network, node string) ([]v1alpha1.IPBlock, error) {
	sel := v1alpha1.LabelNetwork + "=" + network
	if node != "" {
		sel += "," + v1alpha1.LabelNode + "=" + node
	}
	var list v1alpha1.IPBlockList
	if err := s.do(ctx, http.MethodGet, "/ipblocks?labelSelector="+url.QueryEscape(sel), nil, &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// GetBlock implements allocator.Store.
func (s *Store) GetBlock(ctx context.Context, name string) (*v1alpha1.IPBlock, error) {
	var b v1alpha1.IPBlock
	return &b, s.do(ctx, http.MethodGet, "/ipblocks/"+name, nil, &b)
}

// CreateBlock implements allocator.Store.
func (s *Store) CreateBlock(ctx context.Context, b *v1alpha1.IPBlock) (*v1alpha1.IPBlock, error) {
	var out v1alpha1.IPBlock
	return &out, s.do(ctx, http.MethodPost, "/ipblocks", withKind(b), &out)
}

// UpdateBlock implements allocator.Store.
func (s *Store) UpdateBlock(ctx context.Context, b *v1alpha1.IPBlock) (*v1alpha1.IPBlock, error) {
	var out v1alpha1.IPBlock
	return &out, s.do(ctx, http.MethodPut, "/ipblocks/"+b.Name, withKind(b), &out)
}

// DeleteBlock implements allocator.Store.
func (s *Store) DeleteBlock(ctx context.Context, name, resourceVersion string) error {
	opts := metav1.DeleteOptions{TypeMeta: metav1.TypeMeta{Kind: "DeleteOptions", APIVersion: "v1"}}
	if resourceVersion != "" {
		opts.Preconditions = &metav1.Preconditions{ResourceVersion: &resourceVersion}
	}
	return s.do(ctx, http.MethodDelete, "/ipblocks/"+name, opts, nil)
}

// CreatePool implements allocator.Store.
func (s *Store) CreatePool(ctx context.Context, p *v1alpha1.IPPool) error {
	return s.do(ctx, http.MethodPost, "/ippools", withPoolKind(p), nil)
}

func withKind(b *v1alpha1.IPBlock) *v1alpha1.IPBlock {
	c := *b
	c.TypeMeta = metav1.TypeMeta{Kind: "IPBlock", APIVersion: v1alpha1.GroupVersion.String()}
	return &c
}

func withPoolKind(p *v1alpha1.IPPool) *v1alpha1.IPPool {
	c := *p
	c.TypeMeta = metav1.TypeMeta{Kind: "IPPool", APIVersion: v1alpha1.GroupVersion.String()}
	return &c
}

// do sends one request and maps the answer onto the allocator's errors.
func (s *Store) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %w", method, path, allocator.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w: %w", method, path, allocator.ErrUnavailable, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
		return nil
	}
	var st metav1.Status
	_ = json.Unmarshal(data, &st)
	msg := st.Message
	if msg == "" {
		msg = strings.TrimSpace(string(data))
	}
	var kind error
	switch {
	case resp.StatusCode == http.StatusNotFound:
		kind = allocator.ErrNotFound
	case resp.StatusCode == http.StatusConflict && st.Reason == metav1.StatusReasonAlreadyExists:
		kind = allocator.ErrAlreadyExists
	case resp.StatusCode == http.StatusConflict:
		kind = allocator.ErrConflict
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		kind = allocator.ErrUnavailable
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%s %s: %s (grant the plugin's user access to ipam.plexus.io ipblocks and ippools)", method, path, msg)
	default:
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, msg)
	}
	return fmt.Errorf("%s %s: %w: %s", method, path, kind, msg)
}
