package testing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// Call is one plugin invocation.
type Call struct {
	// Binary is the plugin's path.
	Binary string
	// Command is ADD, DEL, CHECK, STATUS or VERSION.
	Command     string
	ContainerID string
	// IfName defaults to net1.
	IfName string
	// Args is CNI_ARGS.
	Args string
	// Conf is the network configuration written to stdin.
	Conf []byte
	// Env is added to the environment.
	Env []string
}

// PodArgs is the CNI_ARGS a container runtime passes for a pod.
func PodArgs(ns, name, uid string) string {
	return fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_UID=%s", ns, name, uid)
}

// Error is an error the plugin reported in CNI's error JSON.
type Error struct{ E types.Error }

func (e *Error) Error() string { return e.E.Error() }

// IsCode reports whether err is a CNI error with code.
func IsCode(err error, code uint) bool {
	var ce *Error
	return errors.As(err, &ce) && ce.E.Code == code
}

// Cmd returns the exec.Cmd of the call, for tests that start and kill processes themselves.
func (c Call) Cmd(ctx context.Context) *exec.Cmd { return c.cmd(ctx) }

func (c Call) cmd(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.Binary)
	ifname := c.IfName
	if ifname == "" {
		ifname = "net1"
	}
	cmd.Env = append([]string{
		"CNI_COMMAND=" + c.Command, "CNI_CONTAINERID=" + c.ContainerID, "CNI_NETNS=/var/run/netns/" + c.ContainerID,
		"CNI_IFNAME=" + ifname, "CNI_PATH=" + filepath.Dir(c.Binary), "CNI_ARGS=" + c.Args, "PATH=/usr/bin:/bin",
	}, c.Env...)
	cmd.Stdin = bytes.NewReader(c.Conf)
	return cmd
}

// Run executes the call. An ADD returns its result; an error the plugin reported is an *Error.
func (c Call) Run(ctx context.Context) (*current.Result, error) {
	cmd := c.cmd(ctx)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return c.Parse(cmd.Run(), stdout.Bytes(), stderr.Bytes())
}

// Parse interprets the outcome of a call run through Cmd: its error, stdout and stderr.
func (c Call) Parse(runErr error, stdout, stderr []byte) (*current.Result, error) {
	if runErr != nil {
		var e types.Error
		if jerr := json.Unmarshal(stdout, &e); jerr == nil && e.Code != 0 {
			return nil, &Error{e}
		}
		return nil, fmt.Errorf("%s %s: %w (stdout %q, stderr %q)", c.Command, c.ContainerID, runErr, stdout, stderr)
	}
	if c.Command != "ADD" {
		return nil, nil
	}
	var r current.Result
	if err := json.Unmarshal(stdout, &r); err != nil {
		return nil, fmt.Errorf("ADD %s printed %q: %w", c.ContainerID, stdout, err)
	}
	return &r, nil
}

// Addr is the first address of an ADD result.
func Addr(r *current.Result) (netip.Addr, bool) {
	if r == nil || len(r.IPs) == 0 {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(r.IPs[0].Address.IP)
	return a.Unmap(), ok
}

// Outcome is the result of one of many calls.
type Outcome struct {
	Index   int
	Addr    netip.Addr
	Err     error
	Latency time.Duration
}

// RunMany runs n calls made by mk, inFlight at a time, and returns their outcomes in index order
// and the wall time of the whole run.
func RunMany(ctx context.Context, n, inFlight int, mk func(i int) Call) ([]Outcome, time.Duration) {
	out := make([]Outcome, n)
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			start := time.Now()
			r, err := mk(i).Run(ctx)
			o := Outcome{Index: i, Err: err, Latency: time.Since(start)}
			if err == nil {
				o.Addr, _ = Addr(r)
			}
			out[i] = o
		}(i)
	}
	wg.Wait()
	return out, time.Since(begin)
}

// Percentile is the p-th percentile (0-100) of the outcomes' latencies.
func Percentile(outs []Outcome, p float64) time.Duration {
	if len(outs) == 0 {
		return 0
	}
	ls := make([]time.Duration, len(outs))
	for i, o := range outs {
		ls[i] = o.Latency
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
	idx := int(p/100*float64(len(ls))+0.5) - 1
	idx = max(0, min(idx, len(ls)-1))
	return ls[idx]
}
