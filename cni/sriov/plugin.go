package sriov

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/cni/sriov/pf"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
)

// Timeout bounds every command, the wait for a VF's lock included.
const Timeout = 60 * time.Second

// bootIDPath changes at every boot: ownership records of an earlier boot are void.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// IPAM runs the IPAM delegate plugin named by the configuration.
type IPAM interface {
	Add(ctx context.Context, plugin string, conf []byte) (types.Result, error)
	Del(ctx context.Context, plugin string, conf []byte) error
	Check(ctx context.Context, plugin string, conf []byte) error
	Status(ctx context.Context, plugin string, conf []byte) error
}

// ExecIPAM runs the IPAM plugin binary found in CNI_PATH over the exec protocol.
type ExecIPAM struct{}

var _ IPAM = ExecIPAM{}

func (ExecIPAM) Add(ctx context.Context, plugin string, conf []byte) (types.Result, error) {
	return invoke.DelegateAdd(ctx, plugin, conf, nil)
}
func (ExecIPAM) Del(ctx context.Context, plugin string, conf []byte) error {
	return invoke.DelegateDel(ctx, plugin, conf, nil)
}
func (ExecIPAM) Check(ctx context.Context, plugin string, conf []byte) error {
	return invoke.DelegateCheck(ctx, plugin, conf, nil)
}
func (ExecIPAM) Status(ctx context.Context, plugin string, conf []byte) error {
	return invoke.DelegateStatus(ctx, plugin, conf, nil)
}

// Host is what the plugin needs from its node.
type Host struct {
	// Getenv reads the environment (NodeConfigEnv).
	Getenv func(string) string
	// ReadFile reads the node settings file.
	ReadFile func(string) ([]byte, error)
	// NewBackend returns the PF backend the node settings choose.
	NewBackend func(NodeSettings) pf.Backend
	// IPAM runs IPAM delegates.
	IPAM IPAM
	// Log receives the plugin's log (the runtime keeps its stderr).
	Log logr.Logger
}

// DefaultHost is the real node.
func DefaultHost(log logr.Logger) Host {
	return Host{Getenv: os.Getenv, ReadFile: os.ReadFile, NewBackend: NewBackend, IPAM: ExecIPAM{}, Log: log}
}

// NewBackend is the PF backend of the node settings: netlink, or the recorder on the fake sysfs.
func NewBackend(s NodeSettings) pf.Backend {
	if s.PFBackend == BackendRecorder {
		return pf.Recorder{SysfsRoot: s.SysfsRoot}
	}
	return pf.Netlink{}
}

// Plugin implements the CNI commands of plexus-sriov.
type Plugin struct{ host Host }

// New returns a Plugin on host.
func New(host Host) *Plugin { return &Plugin{host: host} }

// Funcs is what cmd/plexus-sriov passes to skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status}
}

// node is one command's view of the node.
type node struct {
	settings NodeSettings
	fs       *sysfs.FS
	pf       pf.Backend
	store    Store
	ipam     IPAM
	log      logr.Logger
}

func (p *Plugin) node() (*node, error) {
	path := p.host.Getenv(NodeConfigEnv)
	if path == "" {
		path = DefaultNodeConfigPath
	}
	b, err := p.host.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("reading the node settings %s: %v", path, err), "")
	}
	s, err := ParseNodeSettings(b)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("%s: %v", path, err), "")
	}
	boot, _ := p.host.ReadFile(bootIDPath) // without it, records never expire
	return &node{settings: s, fs: sysfs.New(s.SysfsRoot), pf: p.host.NewBackend(s),
		store: Store{Dir: s.StateDir, BootID: strings.TrimSpace(string(boot))},
		ipam:  p.host.IPAM, log: p.host.Log}, nil
}

// run sets up the node view and runs fn within Timeout.
func (p *Plugin) run(args *skel.CmdArgs, fn func(context.Context, *node) error) error {
	n, err := p.node()
	if err != nil {
		return err
	}
	n.log = n.log.WithValues("container", args.ContainerID, "ifname", args.IfName)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	return fn(logr.NewContext(ctx, n.log), n)
}

// Status reports whether the node's settings and state directory are usable and the IPAM
// delegate is ready.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	return p.run(args, func(ctx context.Context, n *node) error {
		if _, err := os.Stat(n.settings.SysfsRoot); err != nil {
			return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("sysfsRoot %s: %v", n.settings.SysfsRoot, err), "")
		}
		if err := os.MkdirAll(n.settings.StateDir, 0o700); err != nil {
			return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("stateDir %s: %v", n.settings.StateDir, err), "")
		}
		cfg, err := ParseForDel(args.StdinData, args.Args)
		if err != nil {
			return types.NewError(types.ErrDecodingFailure, err.Error(), "")
		}
		if cfg.IPAMType != "" {
			return n.ipam.Status(ctx, cfg.IPAMType, cfg.Raw)
		}
		return nil
	})
}

// netnsAlive reports whether path still names a network namespace.
func netnsAlive(path string) bool {
	if path == "" {
		return false
	}
	n, err := ns.GetNS(path)
	if err != nil {
		return false
	}
	n.Close()
	return true
}
