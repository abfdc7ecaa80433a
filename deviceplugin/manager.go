package deviceplugin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
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
	// MetricsFilter authenticates and authorizes /metrics scrapers (metricsauth.Filter);
	// without it the metrics endpoint is not served.
	MetricsFilter func(http.Handler) http.Handler
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
	metrics *metrics
	status  status

	metricsFilter func(http.Handler) http.Handler

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
		opts:    opts,
		fs:      fs,
		devinfo: &devinfo.Store{Dir: opts.DevInfoDir},
		checker: &health.Checker{Src: fs, NetdevShards: 2}, // every VF's netdev every 2 polls
		inUse:   deps.InUse,
		alloc:   allocations{m: map[string]map[string]time.Time{}, owner: map[string]string{}},
		capCh:   make(chan capacity.NodeCapacity, 1),
		metrics: newMetrics(),

		metricsFilter: deps.MetricsFilter,
		servers:       map[string]*server.Server{},
		registered:    map[string]bool{},
		unhealthy:     map[string]string{},
	}
	if deps.Nodes != nil && opts.NodeName != "" {
		m.pub = &capacity.Publisher{Nodes: deps.Nodes, NodeName: opts.NodeName}
	}
	return m
}

// Run serves until ctx ends, then stops every server. It fails at once when the initial
// configuration cannot be read or is invalid, or a probe or metrics address cannot be bound.
// Nothing it does with the API server (publishing capacity) can stop it serving kubelet.
func (m *Manager) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	probes, metrics, err := m.listen(ctx)
	if err != nil {
		return err
	}
	m.status.lastLoop.Store(time.Now().UnixNano())
	m.serve(ctx, probes, metrics)
	b, err := os.ReadFile(m.opts.ConfigFile)
	if err != nil {
		return fmt.Errorf("reading the device plugin configuration (--config-file): %w", err)
	}
	cfg, err := config.Parse(b, m.opts.ResourcePrefix)
	if err != nil {
		return fmt.Errorf("%s: %w", m.opts.ConfigFile, err)
	}
	m.cfgBytes, m.cfg = b, cfg
	if err := m.adoptDevInfo(); err != nil {
		// Served anyway (kubelet tracks its allocations itself), but said: until the directory
		// is readable, devices allocated before this start count as free in the capacity.
		log.Error(err, "adopting the device-info files of a previous run; their devices count as free until kubelet's PodResources lists them", "dir", m.opts.DevInfoDir)
	}
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
		m.status.lastLoop.Store(time.Now().UnixNano())
		m.status.ready.Store(m.allRegistered())
	}
}

func (m *Manager) allRegistered() bool {
	for _, ok := range m.registered {
		if !ok {
			return false
		}
	}
	return true
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
	var partial *sysfs.PartialError
	switch {
	case errors.As(err, &partial):
		// One unreadable or hot-removed device must not take the others' pools down.
		log.Error(err, "discovery skipped devices; every other device is served", "skipped", len(partial.Failed))
		m.metrics.skipped.Set(float64(len(partial.Failed)))
	case err != nil:
		return err
	default:
		m.metrics.skipped.Set(0)
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
		s := server.New(p, server.Options{PluginDir: m.opts.DevicePluginDir, DevInfo: m.devinfo, OnAllocate: m.allocated})
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

// allocated records an Allocate (called by the servers before the device-info files are
// written, see allocations.release).
func (m *Manager) allocated(resource string, ids []string) {
	m.alloc.add(resource, ids)
	m.metrics.allocations.WithLabelValues(resource).Add(float64(len(ids)))
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
	asked := time.Now()
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
	// Only allocations made a grace period before kubelet was asked can be judged by its
	// answer; each is released only if it is still that allocation (kubelet may have allocated
	// the device again since it answered: then the new pod's file and record stay).
	for _, d := range m.alloc.expired(asked.Add(-m.opts.ReleaseGrace)) {
		if inUse[d.resource][d.id] {
			continue
		}
		released, err := m.alloc.release(d, func() error { return m.devinfo.Remove(d.resource, d.id) })
		switch {
		case err != nil:
			log.Error(err, "releasing device", "device", d.id)
		case released:
			m.capDirty = true
			m.metrics.releases.WithLabelValues(d.resource).Inc()
			log.Info("device released", "resource", d.resource, "device", d.id)
		default:
			log.V(1).Info("device allocated again while releasing it; kept", "resource", d.resource, "device", d.id)
		}
	}
}

// adoptDevInfo treats device-info files left by a previous run as allocations made now (so they
// are released once kubelet's PodResources has not listed them for the grace period).
func (m *Manager) adoptDevInfo() error {
	var errs []error
	for _, r := range m.cfg.ResourceList {
		name := r.FullName(m.opts.ResourcePrefix)
		ids, err := m.devinfo.List(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the device-info files of %s in %s: %w", name, m.opts.DevInfoDir, err))
			continue
		}
		m.alloc.add(name, ids)
	}
	return errors.Join(errs...)
}
