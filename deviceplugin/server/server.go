package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/plexus-project/plexus/deviceplugin/devinfo"
	"github.com/plexus-project/plexus/deviceplugin/policy"
	"github.com/plexus-project/plexus/deviceplugin/pool"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
)

// KubeletSocket is the name of kubelet's registration socket in the device plugin directory.
const KubeletSocket = "kubelet.sock"

// Options configure a Server.
type Options struct {
	// PluginDir is kubelet's device plugin directory: it holds kubelet.sock, and the server's
	// own socket goes there. Required.
	PluginDir string
	// DevInfo writes a device-info file per allocated device; nil writes none.
	DevInfo *devinfo.Store
	// OnAllocate, when set, is told of the devices of every valid Allocate, before their
	// device-info files are written: a release that runs concurrently then sees the new
	// allocation and leaves the new files alone.
	OnAllocate func(resource string, ids []string)
	// RegisterTimeout bounds the Register call to kubelet. Default 10s.
	RegisterTimeout time.Duration
}

// Server is the device plugin of one pool.
type Server struct {
	opts Options
	name string
	log  logr.Logger

	mu        sync.RWMutex
	pool      pool.Pool
	byID      map[string]*sysfs.VF
	unhealthy map[string]bool
	watchers  map[chan struct{}]struct{}
	grpc      *grpc.Server
}

var _ pluginapi.DevicePluginServer = (*Server)(nil)

// New returns a server for p; Start serves it.
func New(p pool.Pool, opts Options) *Server {
	if opts.RegisterTimeout == 0 {
		opts.RegisterTimeout = 10 * time.Second
	}
	s := &Server{opts: opts, name: p.Name, unhealthy: map[string]bool{}, watchers: map[chan struct{}]struct{}{}}
	s.setPoolLocked(p)
	return s
}

// ResourceName is the full resource name served.
func (s *Server) ResourceName() string { return s.name }

// SocketName is the file name of the server's socket in the plugin directory.
func SocketName(resource string) string {
	return "plexus-" + strings.NewReplacer("/", "_").Replace(resource) + ".sock"
}

// SocketPath is the server's socket.
func (s *Server) SocketPath() string { return filepath.Join(s.opts.PluginDir, SocketName(s.name)) }

// Start listens on the server's socket and registers with kubelet. A registration failure is
// returned with the server still serving, so a later Register can be retried.
func (s *Server) Start(ctx context.Context) error {
	s.log = logr.FromContextOrDiscard(ctx).WithValues("resource", s.name)
	sock := s.SocketPath()
	if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing the stale socket %s: %w", sock, err)
	}
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening on %s (does --device-plugin-dir exist and is it writable?): %w", sock, err)
	}
	gs := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(gs, s)
	s.mu.Lock()
	s.grpc = gs
	s.mu.Unlock()
	log := s.log
	go func() {
		if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			log.Error(err, "device plugin server stopped")
		}
	}()
	return s.Register(ctx)
}

// Register tells kubelet about the server.
func (s *Server) Register(ctx context.Context) error {
	kubelet := filepath.Join(s.opts.PluginDir, KubeletSocket)
	conn, err := grpc.NewClient("unix://"+kubelet, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connecting to kubelet at %s: %w", kubelet, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, s.opts.RegisterTimeout)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     SocketName(s.name),
		ResourceName: s.name,
		Options:      &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true},
	})
	if err != nil {
		return fmt.Errorf("registering %s with kubelet at %s (is kubelet running?): %w", s.name, kubelet, err)
	}
	s.log.Info("registered with kubelet", "socket", s.SocketPath())
	return nil
}

// Stop stops serving and removes the socket.
func (s *Server) Stop() {
	s.mu.Lock()
	gs := s.grpc
	s.grpc = nil
	s.mu.Unlock()
	if gs != nil {
		gs.Stop()
	}
	_ = os.Remove(s.SocketPath())
}

// Serving reports whether the server runs and its socket file is in place.
func (s *Server) Serving() bool {
	s.mu.RLock()
	running := s.grpc != nil
	s.mu.RUnlock()
	_, err := os.Stat(s.SocketPath())
	return running && err == nil
}

// SetPool replaces the pool (devices or configuration changed) and tells the watchers.
func (s *Server) SetPool(p pool.Pool) {
	s.mu.Lock()
	s.setPoolLocked(p)
	s.mu.Unlock()
	s.notify()
}

func (s *Server) setPoolLocked(p pool.Pool) {
	s.pool = p
	s.byID = make(map[string]*sysfs.VF, len(p.Devices))
	for i := range p.Devices {
		s.byID[p.Devices[i].Address] = &s.pool.Devices[i]
	}
}

// Pool returns the served pool.
func (s *Server) Pool() pool.Pool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pool
}

// SetUnhealthy replaces the set of unhealthy device IDs; it reports whether anything changed,
// and if so the watchers get a new device list.
func (s *Server) SetUnhealthy(ids map[string]bool) bool {
	s.mu.Lock()
	changed := !maps.Equal(ids, s.unhealthy)
	if changed {
		s.unhealthy = maps.Clone(ids)
	}
	s.mu.Unlock()
	if changed {
		s.notify()
	}
	return changed
}

func (s *Server) notify() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for ch := range s.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Devices is the list ListAndWatch sends.
func (s *Server) Devices() []*pluginapi.Device {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*pluginapi.Device, 0, len(s.pool.Devices))
	for i := range s.pool.Devices {
		vf := &s.pool.Devices[i]
		d := &pluginapi.Device{ID: vf.Address, Health: pluginapi.Healthy}
		if s.unhealthy[vf.Address] {
			d.Health = pluginapi.Unhealthy
		}
		if !s.pool.Config.ExcludeTopology && vf.NUMANode >= 0 {
			d.Topology = &pluginapi.TopologyInfo{Nodes: []*pluginapi.NUMANode{{ID: int64(vf.NUMANode)}}}
		}
		out = append(out, d)
	}
	return out
}

// GetDevicePluginOptions says GetPreferredAllocation is available.
func (s *Server) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{GetPreferredAllocationAvailable: true}, nil
}

// ListAndWatch sends the device list now and after every change, until kubelet or Stop ends it.
func (s *Server) ListAndWatch(_ *pluginapi.Empty, stream pluginapi.DevicePlugin_ListAndWatchServer) error {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.watchers[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, ch)
		s.mu.Unlock()
	}()
	for {
		if err := stream.Send(&pluginapi.ListAndWatchResponse{Devices: s.Devices()}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-ch:
		}
	}
}

// GetPreferredAllocation answers with package policy's choice for each container.
func (s *Server) GetPreferredAllocation(_ context.Context, req *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	resp := &pluginapi.PreferredAllocationResponse{}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range req.ContainerRequests {
		avail := make([]policy.Device, 0, len(c.AvailableDeviceIDs))
		for _, id := range c.AvailableDeviceIDs {
			d := policy.Device{ID: id, NUMA: -1}
			if vf, ok := s.byID[id]; ok {
				d.NUMA, d.PF = vf.NUMANode, vf.PFAddress
			}
			avail = append(avail, d)
		}
		ids := policy.Preferred(avail, c.MustIncludeDeviceIDs, int(c.AllocationSize))
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerPreferredAllocationResponse{DeviceIDs: ids})
	}
	return resp, nil
}

// Allocate returns the environment and device specs of each container's devices and writes
// their device-info files.
func (s *Server) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	s.mu.RLock()
	cfg := s.pool.Config
	resp := &pluginapi.AllocateResponse{}
	var all []*sysfs.VF
	for _, c := range req.ContainerRequests {
		vfs := make([]*sysfs.VF, 0, len(c.DevicesIDs))
		for _, id := range c.DevicesIDs {
			vf, ok := s.byID[id]
			if !ok {
				s.mu.RUnlock()
				return nil, status.Errorf(codes.InvalidArgument, "device %s is not in pool %s (the pool changed since kubelet listed it; kubelet will retry with the new list)", id, s.name)
			}
			vfs = append(vfs, vf)
		}
		cr, err := ContainerResponse(&cfg, s.name, vfs)
		if err != nil {
			s.mu.RUnlock()
			return nil, status.Errorf(codes.Internal, "building the allocation of %s: %v", s.name, err)
		}
		resp.ContainerResponses = append(resp.ContainerResponses, cr)
		all = append(all, vfs...)
	}
	s.mu.RUnlock()
	if s.opts.OnAllocate != nil {
		ids := make([]string, len(all))
		for i, vf := range all {
			ids[i] = vf.Address
		}
		s.opts.OnAllocate(s.name, ids)
	}
	if s.opts.DevInfo != nil {
		for _, vf := range all {
			if err := s.opts.DevInfo.Write(s.name, vf.Address, DeviceInfo(&cfg, vf)); err != nil {
				return nil, status.Errorf(codes.Internal, "%v", err)
			}
		}
	}
	return resp, nil
}

// PreStartContainer is not used (the options do not ask for it).
func (s *Server) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}
