package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/types/create"

	"github.com/plexus-project/plexus/cni/wire"
)

// Config is the shim's entry in 00-plexus.conflist (the daemon writes it).
type Config struct {
	types.PluginConf
	// SocketPath is the daemon's socket (default /run/plexus/cni/plexus.sock).
	SocketPath string `json:"socketPath,omitempty"`
	// NodeName is the node, for messages (default: $NODE_NAME, else the host name).
	NodeName string `json:"nodeName,omitempty"`
	// Timeout bounds one call, as a Go duration (default 3m: below the runtime's own bound,
	// so the pod's event carries our message rather than a bare deadline).
	Timeout string `json:"timeout,omitempty"`
}

// DefaultTimeout bounds one call when the config sets no timeout.
const DefaultTimeout = 3 * time.Minute

// Host is what the shim needs from its machine.
type Host struct {
	// Getenv reads the environment (NODE_NAME).
	Getenv func(string) string
	// Hostname is the node name of last resort.
	Hostname func() (string, error)
	// Call sends one request to the daemon (wire.Call).
	Call func(ctx context.Context, socket string, req *wire.Request) ([]byte, error)
	// Print writes the result of an ADD to stdout (types.PrintResult).
	Print func(result types.Result, cniVersion string) error
}

// DefaultHost is the real machine.
func DefaultHost() Host {
	return Host{Getenv: os.Getenv, Hostname: os.Hostname, Call: wire.Call, Print: types.PrintResult}
}

// Shim implements the CNI commands by forwarding them.
type Shim struct {
	host Host
}

// New returns a Shim on host.
func New(host Host) *Shim { return &Shim{host: host} }

// Funcs is what cmd/plexus passes to skel.PluginMainFuncs.
func (s *Shim) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{
		Add:    func(a *skel.CmdArgs) error { return s.forward("ADD", a) },
		Del:    func(a *skel.CmdArgs) error { return s.forward("DEL", a) },
		Check:  func(a *skel.CmdArgs) error { return s.forward("CHECK", a) },
		GC:     func(a *skel.CmdArgs) error { return s.forward("GC", a) },
		Status: func(a *skel.CmdArgs) error { return s.forward("STATUS", a) },
	}
}

func (s *Shim) forward(command string, args *skel.CmdArgs) error {
	var conf Config
	if err := json.Unmarshal(args.StdinData, &conf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "plexus: cannot parse its network configuration", err.Error())
	}
	socket := conf.SocketPath
	if socket == "" {
		socket = wire.SocketPath(wire.DefaultSocketDir)
	}
	timeout := DefaultTimeout
	if conf.Timeout != "" {
		d, err := time.ParseDuration(conf.Timeout)
		if err != nil || d <= 0 {
			return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("plexus: timeout %q is not a positive duration such as 2m", conf.Timeout), "")
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	out, err := s.host.Call(ctx, socket, &wire.Request{
		Command: command, ContainerID: args.ContainerID, Netns: args.Netns, IfName: args.IfName,
		Args: args.Args, Path: args.Path, Config: args.StdinData,
	})
	if err != nil {
		return s.describe(command, conf.NodeName, socket, err)
	}
	if command != "ADD" {
		return nil
	}
	result, err := create.Create(conf.CNIVersion, out)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "plexus: the daemon's result does not parse as CNI "+conf.CNIVersion, err.Error())
	}
	return s.host.Print(result, conf.CNIVersion)
}

// describe turns a failed call into the CNI error the runtime shows.
func (s *Shim) describe(command, node, socket string, err error) error {
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		return cniErr
	}
	var down *wire.NotRunningError
	if errors.As(err, &down) {
		if node == "" {
			node = s.nodeName()
		}
		msg := fmt.Sprintf("plexus-daemon is not running on node %s (socket %s): check the plexus-daemon DaemonSet", node, socket)
		code := types.ErrTryAgainLater
		if command == "STATUS" {
			code = types.ErrPluginNotAvailable
		}
		return types.NewError(code, msg, down.Err.Error())
	}
	return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("plexus: %s through plexus-daemon (socket %s) failed", command, socket), err.Error())
}

func (s *Shim) nodeName() string {
	if n := s.host.Getenv("NODE_NAME"); n != "" {
		return n
	}
	if n, err := s.host.Hostname(); err == nil {
		return n
	}
	return "(unknown)"
}
