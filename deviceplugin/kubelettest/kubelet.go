package kubelettest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
	podresourcesapi "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// Kubelet is a test kubelet. Create it with Start.
type Kubelet struct {
	// Dir is the device plugin directory (holds kubelet.sock).
	Dir string
	// PodResourcesSocket is the PodResources API socket.
	PodResourcesSocket string

	t       testing.TB
	mu      sync.Mutex
	reg     *grpc.Server
	plugins map[string]*Plugin
	count   map[string]int
	inUse   map[string][]string
	podRes  *grpc.Server
}

// Plugin is a registered plugin as the kubelet sees it.
type Plugin struct {
	Resource string
	Endpoint string
	Options  *pluginapi.DevicePluginOptions
	// Client calls the plugin (Allocate, GetPreferredAllocation, ...).
	Client pluginapi.DevicePluginClient

	conn    *grpc.ClientConn
	cancel  context.CancelFunc
	mu      sync.Mutex
	devices []*pluginapi.Device
	got     bool // a list arrived
	changed chan struct{}
}

// Start serves dir/kubelet.sock and the PodResources API on dir/pod-resources/kubelet.sock.
// Everything stops when the test ends.
func Start(t testing.TB, dir string) *Kubelet {
	t.Helper()
	k := &Kubelet{Dir: dir, t: t, plugins: map[string]*Plugin{}, count: map[string]int{}, inUse: map[string][]string{}}
	prDir := filepath.Join(dir, "pod-resources")
	if err := os.MkdirAll(prDir, 0o755); err != nil {
		t.Fatal(err)
	}
	k.PodResourcesSocket = filepath.Join(prDir, "kubelet.sock")
	lis, err := net.Listen("unix", k.PodResourcesSocket)
	if err != nil {
		t.Fatal(err)
	}
	k.podRes = grpc.NewServer()
	podresourcesapi.RegisterPodResourcesListerServer(k.podRes, &podResources{k: k})
	go func() { _ = k.podRes.Serve(lis) }()
	k.startRegistration()
	t.Cleanup(func() {
		k.stopRegistration()
		k.podRes.Stop()
	})
	return k
}

func (k *Kubelet) startRegistration() {
	sock := filepath.Join(k.Dir, "kubelet.sock")
	_ = os.Remove(sock)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		k.t.Fatal(err)
	}
	gs := grpc.NewServer()
	pluginapi.RegisterRegistrationServer(gs, &registration{k: k})
	k.mu.Lock()
	k.reg = gs
	k.mu.Unlock()
	go func() { _ = gs.Serve(lis) }()
}

func (k *Kubelet) stopRegistration() {
	k.mu.Lock()
	gs := k.reg
	plugins := k.plugins
	k.plugins = map[string]*Plugin{}
	k.mu.Unlock()
	if gs != nil {
		gs.Stop()
	}
	for _, p := range plugins {
		p.close()
	}
}

// Restart emulates a kubelet restart: it forgets every plugin, removes every socket in Dir
// (kubelet does, on start) and serves a new kubelet.sock.
func (k *Kubelet) Restart() {
	k.stopRegistration()
	entries, _ := os.ReadDir(k.Dir)
	for _, e := range entries {
		if e.Type()&os.ModeSocket != 0 {
			_ = os.Remove(filepath.Join(k.Dir, e.Name()))
		}
	}
	time.Sleep(10 * time.Millisecond) // a new mtime for kubelet.sock even on coarse clocks
	k.startRegistration()
}

// Registrations counts the Register calls for resource since Start.
func (k *Kubelet) Registrations(resource string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.count[resource]
}

// Plugin returns the registered plugin for resource, or nil.
func (k *Kubelet) Plugin(resource string) *Plugin {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.plugins[resource]
}

// WaitPlugin waits until resource is registered (and at least minRegistrations times).
func (k *Kubelet) WaitPlugin(t testing.TB, resource string, minRegistrations int, timeout time.Duration) *Plugin {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p := k.Plugin(resource); p != nil && k.Registrations(resource) >= minRegistrations {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("kubelet: %s did not register (%d registrations, want %d) within %s", resource, k.Registrations(resource), minRegistrations, timeout)
	return nil
}

// SetInUse sets what the PodResources API reports: resource -> device IDs assigned to pods.
func (k *Kubelet) SetInUse(inUse map[string][]string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.inUse = inUse
}

// Devices is the last device list the plugin sent.
func (p *Plugin) Devices() []*pluginapi.Device {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.devices
}

// WaitDevices waits until the device list satisfies cond and returns it.
func (p *Plugin) WaitDevices(t testing.TB, timeout time.Duration, cond func([]*pluginapi.Device) bool) []*pluginapi.Device {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		devs, got, ch := p.devices, p.got, p.changed
		p.mu.Unlock()
		if got && cond(devs) {
			return devs
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("kubelet: %s devices did not reach the expected state within %s; last list: %v", p.Resource, timeout, devs)
			return nil
		}
	}
}

func (p *Plugin) close() {
	p.cancel()
	_ = p.conn.Close()
}

type registration struct {
	k *Kubelet
}

func (r *registration) Register(_ context.Context, req *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	if req.Version != pluginapi.Version {
		return nil, errors.New("unsupported device plugin API version " + req.Version)
	}
	conn, err := grpc.NewClient("unix://"+filepath.Join(r.k.Dir, req.Endpoint), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Plugin{Resource: req.ResourceName, Endpoint: req.Endpoint, Options: req.Options,
		Client: pluginapi.NewDevicePluginClient(conn), conn: conn, cancel: cancel, changed: make(chan struct{})}
	r.k.mu.Lock()
	if old := r.k.plugins[req.ResourceName]; old != nil {
		old.close()
	}
	r.k.plugins[req.ResourceName] = p
	r.k.count[req.ResourceName]++
	r.k.mu.Unlock()
	go p.follow(ctx)
	return &pluginapi.Empty{}, nil
}

// follow reads ListAndWatch like kubelet's endpoint does.
func (p *Plugin) follow(ctx context.Context) {
	stream, err := p.Client.ListAndWatch(ctx, &pluginapi.Empty{}, grpc.WaitForReady(true))
	if err != nil {
		return
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.devices, p.got = resp.Devices, true
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

type podResources struct {
	podresourcesapi.UnimplementedPodResourcesListerServer
	k *Kubelet
}

func (s *podResources) List(context.Context, *podresourcesapi.ListPodResourcesRequest) (*podresourcesapi.ListPodResourcesResponse, error) {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	c := &podresourcesapi.ContainerResources{Name: "c"}
	for res, ids := range s.k.inUse {
		c.Devices = append(c.Devices, &podresourcesapi.ContainerDevices{ResourceName: res, DeviceIds: ids})
	}
	return &podresourcesapi.ListPodResourcesResponse{PodResources: []*podresourcesapi.PodResources{
		{Name: "pod", Namespace: "default", Containers: []*podresourcesapi.ContainerResources{c}},
	}}, nil
}
