package deviceplugin

import (
	"sort"
	"sync"
	"time"
)

// allocations remembers which devices were allocated and when.
type allocations struct {
	mu    sync.Mutex
	m     map[string]map[string]time.Time // resource -> device -> allocated at
	owner map[string]string               // device -> resource
	dirty bool                            // changed since takeDirty
}

func (a *allocations) takeDirty() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.dirty
	a.dirty = false
	return d
}

type allocated struct{ resource, id string }

func (a *allocations) add(resource string, ids []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m[resource] == nil {
		a.m[resource] = map[string]time.Time{}
	}
	now := time.Now()
	a.dirty = a.dirty || len(ids) > 0
	for _, id := range ids {
		a.m[resource][id] = now
		a.owner[id] = resource
	}
}

// adopt records id as allocated long ago if it is not known yet.
func (a *allocations) adopt(resource, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.m[resource][id]; ok {
		return
	}
	if a.m[resource] == nil {
		a.m[resource] = map[string]time.Time{}
	}
	a.m[resource][id] = time.Time{}
	a.owner[id] = resource
}

func (a *allocations) has(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.owner[id]
	return ok
}

func (a *allocations) remove(resource, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m[resource], id)
	if a.owner[id] == resource {
		delete(a.owner, id)
	}
}

// expired lists allocations made before t.
func (a *allocations) expired(t time.Time) []allocated {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []allocated
	for res, ids := range a.m {
		for id, at := range ids {
			if at.Before(t) {
				out = append(out, allocated{res, id})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
