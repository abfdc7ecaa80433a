package deviceplugin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/deviceplugin/capacity"
	"github.com/plexus-project/plexus/deviceplugin/config"
	"github.com/plexus-project/plexus/deviceplugin/devinfo"
	"github.com/plexus-project/plexus/deviceplugin/health"
	"github.com/plexus-project/plexus/deviceplugin/pool"
	"github.com/plexus-project/plexus/deviceplugin/server"
	"github.com/plexus-project/plexus/deviceplugin/sysfs"
)

// Deps are the manager's connections to the rest of the node and cluster.
type Deps struct {
	// InUse lists the devices kubelet assigned to pods; nil never releases devices.
	InUse InUseLister
	// Nodes patches the Node's capacity annotation; nil (or an empty NodeName) publishes none.
	Nodes capacity.NodePatcher
}

// Manager runs the plugin: see the package documentation.
type Manager struct {
	opts    Options
	fs      *sysfs.FS
	devinfo *devinfo.Store
	checker *health.Checker
	inUse   InUseLister
	pub     *capacity.Publisher
	alloc   allocations
	capCh   chan capacity.NodeCapacity

	// Owned by the Run loop.
	cfgBytes   []byte
	cfg        *config.Config
	pfs        []sysfs.PF
	pools      []pool.Pool
	servers    map[string]*server.Server
	registered map[string]bool
	unhealthy  map[string]string
	kubeletID  fileID
	capDirty   bool
}

// NewManager returns a manager; Run starts it.
func NewManager(opts Options, deps Deps) *Manager {
	opts.setDefaults()
	fs := sysfs.New(opts.SysfsRoot)
	m := &Manager{
		opts:       opts,
		fs:         fs,
		devinfo:    &devinfo.Store{Dir: opts.DevInfoDir},
		checker:    &health.Checker{Src: fs, NetdevShards: 2}, // every VF's netdev every 2 polls
		inUse:      deps.InUse,
		alloc:      allocations{m: map[string]map[string]time.Time{}, owner: map[string]string{}},
		capCh:      make(chan capacity.NodeCapacity, 1),
		servers:    map[string]*server.Server{},
		registered: map[string]bool{},
		unhealthy:  map[string]string{},
	}
	if deps.Nodes != nil && opts.NodeName != "" {
		m.pub = &capacity.Publisher{Nodes: deps.Nodes, NodeName: opts.NodeName}
	}
	return m
}

// Run serves until ctx ends, then stops every server. It fails at once when the initial
// configuration cannot be read or is invalid.
func (m *Manager) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	b, err := os.ReadFile(m.opts.ConfigFile)
	if err != nil {
		return fmt.Errorf("reading the device plugin configuration (--config-file): %w", err)
	}
	cfg, err := config.Parse(b, m.opts.ResourcePrefix)
	if err != nil {
		return fmt.Errorf("%s: %w", m.opts.ConfigFile, err)
	}
	m.cfgBytes, m.cfg = b, cfg
	m.adoptDevInfo()
	m.kubeletID = statID(filepath.Join(m.opts.DevicePluginDir, server.KubeletSocket))
	if err := m.rebuild(ctx); err != nil {
		return err
	}
	defer m.stopAll()

	if m.pub != nil {
		go m.publishLoop(ctx)
	}
	events := m.watch(ctx)
	health := time.NewTicker(m.opts.HealthInterval)
	kubelet := time.NewTicker(m.opts.KubeletCheckInterval)
	cfgTick := time.NewTicker(m.opts.ConfigCheckInterval)
	release := time.NewTicker(m.opts.ReleaseInterval)
	defer health.Stop()
	defer kubelet.Stop()
	defer cfgTick.Stop()
	defer release.Stop()
	log.Info("device plugin running", "pools", len(m.pools), "configFile", m.opts.ConfigFile, "sysfsRoot", m.opts.SysfsRoot)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-health.C:
			m.checkHealth(ctx)
		case <-kubelet.C:
			m.checkKubelet(ctx)
		case <-cfgTick.C:
			m.checkConfig(ctx)
		case <-release.C:
			m.release(ctx)
		case ev := <-events:
			if filepath.Dir(ev) == filepath.Clean(m.opts.DevicePluginDir) {
				m.checkKubelet(ctx)
			} else {
				m.checkConfig(ctx)
			}
		}
		m.offerCapacity()
	}
}

// watch forwards file events of the plugin directory and the configuration's directory.
func (m *Manager) watch(ctx context.Context) <-chan string {
	out := make(chan string, 16)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "file watching unavailable; relying on polling")
		return out
	}
	for _, d := range []string{m.opts.DevicePluginDir, filepath.Dir(m.opts.ConfigFile)} {
		if err := w.Add(d); err != nil {
			logr.FromContextOrDiscard(ctx).Info("cannot watch directory; relying on polling", "dir", d, "err", err.Error())
		}
	}
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				select {
				case out <- ev.Name:
				default:
				}
			case <-w.Errors:
			}
		}
	}()
	return out
}

// rebuild discovers the VFs, rebuilds the pools and reconciles the servers with them.
func (m *Manager) rebuild(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	start := time.Now()
	pfs, err := m.fs.Discover(ctx)
	if err != nil {
		return err
	}
	m.pfs = pfs
	m.pools = pool.Build(ctx, m.cfg, m.opts.ResourcePrefix, pfs)
	nvf := 0
	for _, pf := range pfs {
		nvf += len(pf.VFs)
	}
	log.Info("discovered SR-IOV devices", "pfs", len(pfs), "vfs", nvf, "took", time.Since(start).String())
	m.updateHealth(ctx, false)
	want := map[string]bool{}
	for _, p := range m.pools {
		want[p.Name] = true
		log.Info("pool", "resource", p.Name, "devices", p.IDs())
		if s, ok := m.servers[p.Name]; ok {
			s.SetPool(p)
			m.applyHealth(s)
			continue
		}
		s := server.New(p, server.Options{PluginDir: m.opts.DevicePluginDir, DevInfo: m.devinfo, OnAllocate: m.alloc.add})
		m.servers[p.Name] = s
		m.applyHealth(s)
		m.registered[p.Name] = m.start(ctx, s)
	}
	for name, s := range m.servers {
		if !want[name] {
			log.Info("pool removed from the configuration; stopping its server", "resource", name)
			s.Stop()
			delete(m.servers, name)
			delete(m.registered, name)
		}
	}
	m.capDirty = true
	return nil
}

func (m *Manager) start(ctx context.Context, s *server.Server) bool {
	if err := s.Start(ctx); err != nil {
		logr.FromContextOrDiscard(ctx).Info("not registered with kubelet yet; will retry", "resource", s.ResourceName(), "err", err.Error())
		return false
	}
	return true
}

func (m *Manager) stopAll() {
	for _, s := range m.servers {
		s.Stop()
	}
}

// checkConfig reloads the configuration file when its content changed. An invalid file keeps
// the previous pools.
func (m *Manager) checkConfig(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx)
	b, err := os.ReadFile(m.opts.ConfigFile)
	if err != nil || bytes.Equal(b, m.cfgBytes) {
		return
	}
	m.cfgBytes = b
	cfg, err := config.Parse(b, m.opts.ResourcePrefix)
	if err != nil {
		log.Error(err, "the changed configuration is invalid; keeping the previous pools", "file", m.opts.ConfigFile)
		return
	}
	log.Info("configuration changed; rebuilding the pools", "file", m.opts.ConfigFile)
	old := m.cfg
	m.cfg = cfg
	if err := m.rebuild(ctx); err != nil {
		log.Error(err, "rebuilding the pools failed; keeping the previous configuration")
		m.cfg = old
	}
}

// checkKubelet re-registers every server when kubelet.sock was recreated (kubelet restarted),
// restarts servers whose socket vanished, and retries failed registrations.
func (m *Manager) checkKubelet(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx)
	id := statID(filepath.Join(m.opts.DevicePluginDir, server.KubeletSocket))
	restarted := id != m.kubeletID && id.exists()
	if restarted {
		log.Info("kubelet.sock was recreated (kubelet restarted); re-registering every pool")
	}
	m.kubeletID = id
	if !id.exists() {
		return
	}
	for name, s := range m.servers {
		switch {
		case restarted || !s.Serving():
			s.Stop()
			m.registered[name] = m.start(ctx, s)
		case !m.registered[name]:
			if err := s.Register(ctx); err == nil {
				m.registered[name] = true
			}
		}
	}
}

// checkHealth polls health and pushes changes to the servers.
func (m *Manager) checkHealth(ctx context.Context) { m.updateHealth(ctx, true) }

// updateHealth checks health; when rediscover is set, PFs that enabled more VFs than known
// trigger a new discovery.
func (m *Manager) updateHealth(ctx context.Context, rediscover bool) {
	log := logr.FromContextOrDiscard(ctx)
	res := m.checker.Check(m.pfs, m.alloc.has)
	if len(res.Grown) > 0 && rediscover {
		log.Info("PFs enabled more VFs; discovering again", "pfs", res.Grown)
		if err := m.rebuild(ctx); err != nil {
			log.Error(err, "discovery failed")
		}
		return
	}
	for id, why := range res.Unhealthy {
		if _, was := m.unhealthy[id]; !was {
			log.Info("device unhealthy", "device", id, "reason", why)
		}
	}
	for id := range m.unhealthy {
		if _, still := res.Unhealthy[id]; !still {
			log.Info("device healthy again", "device", id)
		}
	}
	m.unhealthy = res.Unhealthy
	for _, s := range m.servers {
		if m.applyHealth(s) {
			m.capDirty = true
		}
	}
}

func (m *Manager) applyHealth(s *server.Server) bool {
	set := map[string]bool{}
	for _, vf := range s.Pool().Devices {
		if _, bad := m.unhealthy[vf.Address]; bad {
			set[vf.Address] = true
		}
	}
	return s.SetUnhealthy(set)
}

// release removes the device-info files of devices no pod uses any more.
func (m *Manager) release(ctx context.Context) {
	if m.inUse == nil {
		return
	}
	log := logr.FromContextOrDiscard(ctx)
	inUse, err := m.inUse.InUse(ctx)
	if err != nil {
		log.V(1).Info("cannot ask kubelet which devices are in use; not releasing any", "err", err.Error())
		return
	}
	for res, ids := range inUse {
		if _, ours := m.servers[res]; ours {
			for id := range ids {
				m.alloc.adopt(res, id)
			}
		}
	}
	for _, d := range m.alloc.expired(time.Now().Add(-m.opts.ReleaseGrace)) {
		if inUse[d.resource][d.id] {
			continue
		}
		if err := m.devinfo.Remove(d.resource, d.id); err != nil {
			log.Error(err, "releasing device", "device", d.id)
			continue
		}
		m.alloc.remove(d.resource, d.id)
		m.capDirty = true
		log.Info("device released", "resource", d.resource, "device", d.id)
	}
}

// adoptDevInfo treats device-info files left by a previous run as allocations.
func (m *Manager) adoptDevInfo() {
	for _, r := range m.cfg.ResourceList {
		name := r.FullName(m.opts.ResourcePrefix)
		ids, _ := m.devinfo.List(name)
		m.alloc.add(name, ids)
	}
}

func (m *Manager) offerCapacity() {
	if m.alloc.takeDirty() {
		m.capDirty = true
	}
	if m.pub == nil || !m.capDirty {
		return
	}
	m.capDirty = false
	nc := capacity.Compute(m.pools, func(id string) bool { _, bad := m.unhealthy[id]; return bad }, m.alloc.has)
	select {
	case <-m.capCh:
	default:
	}
	m.capCh <- nc
}

func (m *Manager) publishLoop(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx)
	const firstBackoff, maxBackoff = 2 * time.Second, time.Minute
	var pending *capacity.NodeCapacity
	backoff := firstBackoff
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case nc := <-m.capCh:
			pending = &nc
		case <-retry.C:
		}
		if pending == nil {
			continue
		}
		if err := m.pub.Publish(ctx, *pending); err != nil {
			log.Error(err, "publishing capacity", "retryIn", backoff.String())
			retry.Reset(backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		pending, backoff = nil, firstBackoff
	}
}
