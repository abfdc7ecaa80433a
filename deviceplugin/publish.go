package deviceplugin

import (
	"context"
	"time"

	"github.com/go-logr/logr"

	"github.com/plexus-project/plexus/deviceplugin/capacity"
)

// offerCapacity recounts the pools when something changed, updates the metrics and hands the
// count to publishLoop (replacing one it has not taken yet: only the latest matters).
func (m *Manager) offerCapacity() {
	if m.alloc.takeDirty() {
		m.capDirty = true
	}
	if !m.capDirty {
		return
	}
	m.capDirty = false
	nc := capacity.Compute(m.pools, func(id string) bool { _, bad := m.unhealthy[id]; return bad }, m.alloc.has)
	totals := map[string]int{}
	for _, p := range m.pools {
		totals[p.Name] = len(p.Devices)
	}
	m.metrics.setCapacity(nc, totals)
	if m.pub == nil {
		return
	}
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
		pctx, cancel := context.WithTimeout(ctx, m.opts.APITimeout)
		err := m.pub.Publish(pctx, *pending)
		cancel()
		if err != nil {
			m.metrics.publishErrs.Inc()
			log.Error(err, "publishing capacity", "retryIn", backoff.String())
			retry.Reset(backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		pending, backoff = nil, firstBackoff
	}
}
