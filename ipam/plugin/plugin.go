package plugin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/plexus-project/plexus/ipam/agent"
	"github.com/plexus-project/plexus/ipam/allocator"
	"github.com/plexus-project/plexus/ipam/allocator/apistore"
	"github.com/plexus-project/plexus/ipam/config"
)

// Host is what the plugin needs from its machine.
type Host struct {
	// Getenv reads the environment (node name defaults).
	Getenv func(string) string
	// Hostname is the last resort for the node name.
	Hostname func() (string, error)
	// ReadFile reads the flat configuration file.
	ReadFile func(string) ([]byte, error)
	// NewStore connects to the API server of a kubeconfig.
	NewStore func(kubeconfig string, requestTimeout time.Duration) (allocator.Store, error)
	// NewLocker returns the node-local lock of a directory.
	NewLocker func(dir string) allocator.Locker
	// NewCache returns the node-local block cache of a directory (nil: no cache).
	NewCache func(dir string) allocator.Cache
	// NewJournal returns the node's IPAM journal in a directory (nil: none): in direct mode the
	// plugin writes what a stopped agent journaled and did not write yet.
	NewJournal func(dir string) allocator.Journal
	// DialAgent connects to the node agent listening in a directory, allocating for node ("":
	// the agent's); an error means there is none (nil: never use one).
	DialAgent func(dir, node string) (Allocator, func(), error)
}

// Allocator is what the commands allocate through: an allocator.Allocator of their own (direct
// mode) or the node agent's (agent mode, see ipam/agent).
type Allocator interface {
	Allocate(ctx context.Context, pool allocator.Pool, owner allocator.Owner, requested netip.Addr) (netip.Addr, error)
	Release(ctx context.Context, network string, owner allocator.Owner, stickyTTL time.Duration) error
	Find(ctx context.Context, pool allocator.Pool, owner allocator.Owner) (netip.Addr, bool, error)
	Ping(ctx context.Context, network string) error
}

// DefaultHost is the real machine.
func DefaultHost() Host {
	return Host{
		Getenv:     os.Getenv,
		Hostname:   os.Hostname,
		ReadFile:   os.ReadFile,
		NewStore:   func(kc string, t time.Duration) (allocator.Store, error) { return apistore.FromKubeconfig(kc, t) },
		NewLocker:  func(dir string) allocator.Locker { return allocator.FileLocker{Dir: dir} },
		NewCache:   func(dir string) allocator.Cache { return allocator.FileCache{Dir: dir} },
		NewJournal: func(dir string) allocator.Journal { return allocator.FileJournal{Dir: dir} },
		DialAgent: func(dir, node string) (Allocator, func(), error) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c, err := agent.Dial(ctx, dir, node)
			if err != nil {
				return nil, nil, err
			}
			return c, func() { c.Close() }, nil
		},
	}
}

// nodeConfig reads the node's settings: the node configuration file (config.NodeConfigEnv names
// it, else config.NodeConfigPath; none is fine), with NODE_NAME or KUBERNETES_NODE_NAME of the
// environment as the node name when the file names none.
func (p *Plugin) nodeConfig() (*config.NodeConfig, error) {
	path := p.host.Getenv(config.NodeConfigEnv)
	if path == "" {
		path = config.NodeConfigPath
	}
	node := &config.NodeConfig{}
	b, err := p.host.ReadFile(path)
	switch {
	case err == nil:
		if node, err = config.ParseNodeConfig(b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading the node configuration %s: %w", path, err)
	}
	for _, env := range []string{"NODE_NAME", "KUBERNETES_NODE_NAME"} {
		if node.NodeName == "" {
			node.NodeName = p.host.Getenv(env)
		}
	}
	if err := node.Validate(); err != nil {
		return nil, err
	}
	return node, nil
}

// flatFile reads the flat file configuration_path names (config.ValidateHostPaths limits where),
// else the first of Whereabouts' that exists.
func (p *Plugin) flatFile(stdin []byte) ([]byte, error) {
	if path := config.ConfigurationPath(stdin); path != "" {
		var ipam config.IPAM
		ipam.ConfigurationPath = path
		if errs, _ := config.ValidateHostPaths(&ipam, field.NewPath("ipam")); len(errs) > 0 {
			return nil, errs.ToAggregate()
		}
		b, err := p.host.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading configuration_path %s: %w", path, err)
		}
		return b, nil
	}
	for _, path := range config.FlatFilePaths {
		if b, err := p.host.ReadFile(path); err == nil {
			return b, nil
		}
	}
	return nil, nil
}

// Plugin implements the CNI commands.
type Plugin struct {
	host Host
}

// New returns a Plugin on host.
func New(host Host) *Plugin { return &Plugin{host: host} }

// Funcs is what cmd/plexus-ipam passes to skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status, GC: p.GC}
}

// call is one parsed invocation.
type call struct {
	cfg   *config.Config
	alloc Allocator
	owner allocator.Owner
	log   logr.Logger
	close func()
}

func (p *Plugin) setup(args *skel.CmdArgs) (*call, error) {
	nodeConf, err := p.nodeConfig()
	if err != nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	flat, err := p.flatFile(args.StdinData)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	cfg, err := config.ParseForNode(args.StdinData, flat, nodeConf, args.Args)
	var hostPath *config.HostPathError
	if errors.As(err, &hostPath) {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "plexus-ipam refuses the network configuration: "+err.Error(), "")
	}
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	owner := allocator.Owner{ContainerID: args.ContainerID, IfName: args.IfName,
		PodNamespace: cfg.Pod.Namespace, PodName: cfg.Pod.Name, PodUID: cfg.Pod.UID}
	log, closeLog := newLogger(cfg)
	log = log.WithValues("container", args.ContainerID, "ifname", args.IfName, "pod", cfg.Pod.Namespace+"/"+cfg.Pod.Name)
	for _, w := range cfg.Warnings {
		log.Info("warning: " + w)
	}
	node := cfg.NodeName
	if p.host.DialAgent != nil {
		// The node agent, when it runs, allocates for us (and knows the node's name).
		if a, closeAgent, err := p.host.DialAgent(cfg.LockDir, node); err == nil {
			return &call{cfg: cfg, alloc: a, owner: owner, log: log.WithValues("node", node, "via", "agent"),
				close: func() { closeAgent(); closeLog() }}, nil
		}
	}
	if node == "" {
		if node, err = p.host.Hostname(); err != nil {
			closeLog()
			return nil, fmt.Errorf("no node_name in the config, no NODE_NAME in the environment, no node agent, and no host name: %w", err)
		}
	}
	store, err := p.host.NewStore(cfg.Kubeconfig, min(cfg.Timeout, 10*time.Second))
	if err != nil {
		closeLog()
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	opts := allocator.Options{Node: node}
	if p.host.NewCache != nil {
		opts.Cache = p.host.NewCache(cfg.LockDir)
	}
	if p.host.NewJournal != nil {
		opts.Journal = p.host.NewJournal(cfg.LockDir)
	}
	return &call{cfg: cfg, alloc: allocator.New(store, p.host.NewLocker(cfg.LockDir), opts), owner: owner,
		log: log.WithValues("node", node), close: closeLog}, nil
}

func (c *call) context() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	return logr.NewContext(ctx, c.log), cancel
}

func (c *call) pools() []allocator.Pool {
	var out []allocator.Pool
	for _, r := range c.cfg.Ranges {
		pool := allocator.NewPool(c.cfg.NetworkName, r)
		pool.Sticky, pool.StickyTTL = c.cfg.Sticky, c.cfg.StickyTTL
		out = append(out, pool)
	}
	return out
}

// run sets up the call of args and runs fn within the call's timeout, closing what the setup
// opened.
func (p *Plugin) run(args *skel.CmdArgs, fn func(ctx context.Context, c *call) error) error {
	c, err := p.setup(args)
	if err != nil {
		return err
	}
	defer c.close()
	ctx, cancel := c.context()
	defer cancel()
	return fn(ctx, c)
}

// Add allocates one address per range and prints the IPAM result.
func (p *Plugin) Add(args *skel.CmdArgs) error { return p.run(args, add) }

func add(ctx context.Context, c *call) (err error) {
	start := time.Now()
	allocated := false
	defer func() {
		if err != nil && allocated && ctx.Err() == nil {
			// Leave nothing half-allocated (dual-stack), within what is left of the timeout; the
			// runtime's DEL after a failed ADD covers the rest.
			_ = c.alloc.Release(ctx, c.cfg.NetworkName, c.owner, 0)
		}
		if err != nil {
			c.log.Error(err, "ADD failed")
		}
	}()
	result := &current.Result{CNIVersion: current.ImplementedSpecVersion, Routes: c.cfg.Routes, DNS: c.cfg.DNS}
	for _, pool := range c.pools() {
		var want netip.Addr
		for _, r := range c.cfg.Requested {
			if pool.Range.Subnet().Contains(r) {
				want = r
			}
		}
		addr, err := c.alloc.Allocate(ctx, pool, c.owner, want)
		if err != nil {
			return cniError(fmt.Errorf("allocating from pool %s: %w", pool.Name, err))
		}
		allocated = true
		result.IPs = append(result.IPs, ipConfig(pool, addr))
	}
	c.log.V(1).Info("ADD", "ips", result.IPs, "took", time.Since(start).String())
	return types.PrintResult(result, c.cfg.CNIVersion)
}

// Del frees the addresses of the container's interface; freeing nothing succeeds.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	return p.run(args, func(ctx context.Context, c *call) error {
		var ttl time.Duration
		if c.cfg.Sticky {
			ttl = c.cfg.StickyTTL
		}
		if err := c.alloc.Release(ctx, c.cfg.NetworkName, c.owner, ttl); err != nil {
			c.log.Error(err, "DEL failed")
			return cniError(fmt.Errorf("releasing the addresses of container %s: %w", c.owner.ContainerID, err))
		}
		c.log.V(1).Info("DEL")
		return nil
	})
}

// Check verifies that the container's interface holds an address in every range.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	return p.run(args, func(ctx context.Context, c *call) error {
		for _, pool := range c.pools() {
			_, ok, err := c.alloc.Find(ctx, pool, c.owner)
			if err != nil {
				return cniError(err)
			}
			if !ok {
				return fmt.Errorf("container %s interface %s holds no address in pool %s", c.owner.ContainerID, c.owner.IfName, pool.Name)
			}
		}
		return nil
	})
}

// Status reports whether the API server answers.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	return p.run(args, func(ctx context.Context, c *call) error {
		if err := c.alloc.Ping(ctx, c.cfg.NetworkName); err != nil {
			return types.NewError(types.ErrPluginNotAvailable, "the API server holding the IP pools does not answer", err.Error())
		}
		return nil
	})
}

// GC does nothing: the reconciler of plexus-controller frees leaked addresses cluster-wide.
func (p *Plugin) GC(*skel.CmdArgs) error { return nil }

func ipConfig(pool allocator.Pool, addr netip.Addr) *current.IPConfig {
	bits := pool.Range.Subnet().Bits()
	ip := net.IP(addr.AsSlice())
	cfg := &current.IPConfig{Address: net.IPNet{IP: ip, Mask: net.CIDRMask(bits, addr.BitLen())}}
	if gw := pool.Range.Gateway(); gw.IsValid() {
		cfg.Gateway = net.IP(gw.AsSlice())
	}
	return cfg
}

// cniError marks API unavailability and timeouts as "try again later" (CNI error 11).
func cniError(err error) error {
	if errors.Is(err, allocator.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return types.NewError(types.ErrTryAgainLater, err.Error(), "the API server did not answer in time; retry")
	}
	return err
}
