package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// Defaults shared by the shim, the daemon and the conflist the daemon writes.
const (
	// DefaultSocketDir is the daemon's --cni-socket-dir.
	DefaultSocketDir = "/run/plexus/cni"
	// SocketName is the socket's name inside the socket directory.
	SocketName = "plexus.sock"
	// Path is the HTTP path of a CNI call.
	Path = "/cni"
)

// SocketPath is the socket inside dir.
func SocketPath(dir string) string { return filepath.Join(dir, SocketName) }

// Request is one CNI call as the runtime made it to the shim.
type Request struct {
	// Command is CNI_COMMAND: ADD, DEL, CHECK, GC or STATUS.
	Command string `json:"command"`
	// ContainerID, Netns, IfName, Args and Path are CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
	// CNI_ARGS and CNI_PATH.
	ContainerID string `json:"containerID,omitempty"`
	Netns       string `json:"netns,omitempty"`
	IfName      string `json:"ifName,omitempty"`
	Args        string `json:"args,omitempty"`
	Path        string `json:"path,omitempty"`
	// Config is the network configuration the runtime gave the shim on stdin.
	Config json.RawMessage `json:"config"`
}

// NotRunningError says the daemon's socket does not answer: the daemon is not running (or
// not yet listening) on this node.
type NotRunningError struct {
	Socket string
	Err    error
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("nothing answers on %s: %v", e.Socket, e.Err)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// Call sends req to the daemon listening on socket and returns its output (the CNI result of
// an ADD). A CNI error the daemon answered comes back as a *types.Error; a daemon that does not
// answer at all as a *NotRunningError.
func Call(ctx context.Context, socket string, req *Request) ([]byte, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: DialTimeout}
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://plexus-daemon"+Path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return nil, &NotRunningError{Socket: socket, Err: opErr.Err}
		}
		return nil, fmt.Errorf("calling plexus-daemon on %s: %w", socket, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading plexus-daemon's answer on %s: %w", socket, err)
	}
	if resp.StatusCode/100 == 2 {
		return out, nil
	}
	var cniErr types.Error
	if err := json.Unmarshal(out, &cniErr); err != nil || cniErr.Msg == "" {
		return nil, fmt.Errorf("plexus-daemon on %s answered %s: %s", socket, resp.Status, bytes.TrimSpace(out))
	}
	return nil, &cniErr
}

// WriteError answers an HTTP request with a CNI error.
func WriteError(w http.ResponseWriter, status int, e *types.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

// DialTimeout bounds how long the shim waits for the socket to accept; the daemon either
// listens or it does not.
const DialTimeout = 2 * time.Second
